"""``bind_parameters``: the generation vocabulary (prompt, seed, sampler, size, ...) set on a workflow's roles.

One binder behind ``GenerationTask`` and sweeps over a ``Workflow``, so a parameter name means the same
thing in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowError

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ["PARAMETER_NAMES", "bind_parameters"]

PARAMETER_NAMES = (
    "prompt", "negative_prompt", "seed", "sampler", "scheduler", "steps", "cfg_scale", "denoise", "width",
    "height", "checkpoint", "vae", "batch_size", "frames", "fps",
)
"""The names ``bind_parameters`` takes."""


def bind_parameters(wf: Workflow, params: Mapping[str, Any]) -> None:
    """Set each given parameter on the node that plays its role; absent (or None) ones leave the graph as is.

    A missing half of the size is kept from the graph. Raises ``WorkflowError`` for an unknown name or a
    role the graph does not have.
    """
    given = {name: value for name, value in params.items() if value is not None}
    unknown = sorted(set(given) - set(PARAMETER_NAMES))
    if unknown:
        raise WorkflowError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETER_NAMES)}")
    if "prompt" in given or "negative_prompt" in given:
        wf.set_prompt(given.get("prompt"), given.get("negative_prompt"))
    if "seed" in given:
        wf.set_seed(int(given["seed"]))
    sampler_args: dict[str, Any] = {name: given[name] for name in ("scheduler", "steps", "denoise") if name in given}
    if "cfg_scale" in given:
        sampler_args["cfg"] = given["cfg_scale"]
    if "sampler" in given or sampler_args:
        wf.set_sampler(given.get("sampler"), **sampler_args)
    if "width" in given or "height" in given:
        current: dict[str, Any] = {**wf.parameters(), **given}
        if current.get("width") is None or current.get("height") is None:
            raise WorkflowError("set both width and height: the workflow has no size to keep the other from")
        wf.set_size(int(current["width"]), int(current["height"]))
    for name, setter in (("checkpoint", wf.set_checkpoint), ("vae", wf.set_vae), ("batch_size", wf.set_batch_size),
                         ("frames", wf.set_frames), ("fps", wf.set_fps)):
        if name in given:
            setter(given[name])
