"""comfy_nb: drive ComfyUI from Jupyter.

The client (``AsyncComfyClient`` / blocking ``ComfyClient``), its job model, workflow binding, sweeps
and the notebook widgets. Importing this package does not import ipywidgets; the widgets live in
``comfy_nb.widgets`` and the mock server in ``comfy_nb.mock``. Every public name loads on first use
(the client's wire models alone take longer to build than the 150 ms ``import comfy_nb`` budget).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _display

if TYPE_CHECKING:
    from ._connect import connect
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
    from .config import ComfyConfig
    from .experiments import OverflowPolicy, ServerPool, Sweep, SweepRun
    from .workflows import GenerationTask, Workflow

__version__ = "0.1.0"


def _load_widgets() -> None:
    """The package root wires display: importing ``comfy_nb.widgets`` registers its viewers."""
    import importlib

    importlib.import_module("comfy_nb.widgets")


_display.set_viewer_loader(_load_widgets)

_LAZY = {
    **dict.fromkeys(
        ["AsyncComfyClient", "BlockingJob", "ComfyClient", "Job", "JobState", "JobStatus", "Output", "QueueState",
         "ServerCapabilities"],
        "comfy_nb.client",
    ),
    "ComfyConfig": "comfy_nb.config",
    "Workflow": "comfy_nb.workflows",
    "GenerationTask": "comfy_nb.workflows",
    "Sweep": "comfy_nb.experiments",
    "SweepRun": "comfy_nb.experiments",
    "ServerPool": "comfy_nb.experiments",
    "OverflowPolicy": "comfy_nb.experiments",
    "connect": "comfy_nb._connect",
}


def __getattr__(name: str) -> Any:
    """Public names load on first use, keeping ``import comfy_nb`` light."""
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
    "OverflowPolicy",
    "QueueState",
    "ServerCapabilities",
    "ServerPool",
    "Sweep",
    "SweepRun",
    "Workflow",
    "__version__",
    "connect",
]


def __dir__() -> list[str]:
    """The lazy names too, so tab completion in a notebook lists them before first use."""
    return sorted(set(globals()) | set(__all__))
