"""comfy_nb: drive ComfyUI from Jupyter.

The client (``AsyncComfyClient`` / blocking ``ComfyClient``), its job model, workflow binding, sweeps
and the notebook widgets. Importing this package does not import ipywidgets; the widgets live in
``comfy_nb.widgets`` and the mock server in ``comfy_nb.mock``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _display
from .client import (
    AsyncComfyClient,
    BlockingJob,
    ComfyClient,
    Job,
    JobState,
    JobStatus,
    Output,
    QueueState,
    ServerCapabilities,
)

if TYPE_CHECKING:
    from .config import ComfyConfig
    from .workflows import GenerationTask, Workflow

__version__ = "0.1.0"


def _load_widgets() -> None:
    """The package root wires display: importing ``comfy_nb.widgets`` registers its viewers."""
    import importlib

    importlib.import_module("comfy_nb.widgets")


_display.set_viewer_loader(_load_widgets)

_LAZY = {
    "ComfyConfig": "comfy_nb.config",
    "Workflow": "comfy_nb.workflows",
    "GenerationTask": "comfy_nb.workflows",
    "Sweep": "comfy_nb.experiments",
    "SweepRun": "comfy_nb.experiments",
    "ServerPool": "comfy_nb.experiments",
    "connect": "comfy_nb._connect",
}


def __getattr__(name: str) -> Any:
    """Workflows, config and experiments load on first use, keeping ``import comfy_nb`` light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'comfy_nb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncComfyClient",
    "BlockingJob",
    "ComfyClient",
    "ComfyConfig",
    "GenerationTask",
    "Job",
    "JobState",
    "JobStatus",
    "Output",
    "QueueState",
    "ServerCapabilities",
    "ServerPool",
    "Sweep",
    "SweepRun",
    "Workflow",
    "__version__",
    "connect",
]
