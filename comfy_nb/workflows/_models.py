"""Which model files a task's graph loads: the task's choice, the config's preference where it fits,
and, on a server that lacks a file, another of the same known family (with a warning) or an error.

A graph is built for one model family (a built-in template knows its own). A file fits it when
``protocol.fits`` says so: preferences that do not fit are skipped with a warning (an SD checkpoint
never lands on a video graph); a task's own choice that does not fit is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import DEFAULT_WORKFLOWS, ComfyConfig, LoraSpec, ModelChoice
from ..errors import ConfigError, WorkflowError
from ..protocol import MODEL_FAMILIES, MODEL_INPUTS, NodeDef, family_of, fits
from ._workflow import Workflow

__all__ = ["ModelPlan", "plan_models", "resolve_models"]

_PREFERENCE_KEYS = frozenset(DEFAULT_WORKFLOWS) | frozenset(MODEL_FAMILIES)


@dataclass
class ModelPlan:
    """The files to bind into a graph; ``None`` keeps the graph's own."""

    checkpoint: str | None = None
    diffusion_model: str | None = None
    text_encoder: str | None = None
    vae: str | None = None
    loras: Sequence[LoraSpec] = ()


def _title(family: str | None) -> str:
    known = MODEL_FAMILIES.get(family or "")
    if known is not None:
        return f"{known.title} ({known.name})"
    return f"family {family}" if family else "unknown family"  # text encoders, upscalers: a name only


def plan_models(
    wf: Workflow,
    config: ComfyConfig,
    key: str,
    family: str | None,
    *,
    model: str | None,
    vae: str | None,
    loras: Sequence[LoraSpec] | None,
) -> ModelPlan:
    """The task's own choices (``model``, ``vae``, ``loras``) over the config's preferences for the
    task type ``key``, then for the graph's ``family``, then the simple fields (image graphs only)."""
    unknown = sorted(set(config.models) - _PREFERENCE_KEYS)
    if unknown:
        raise ConfigError(
            f"config.models has unknown key(s) {', '.join(map(repr, unknown))}: use a task type "
            f"({', '.join(DEFAULT_WORKFLOWS)}) or a model family ({', '.join(MODEL_FAMILIES)})"
        )
    has_ckpt = any("ckpt_name" in n.inputs for n in wf)
    has_unet = any("unet_name" in n.inputs for n in wf)
    image_graph = has_ckpt and (family is None or not MODEL_FAMILIES[family].video)
    choices = [c for c in (config.models.get(key), config.models.get(family or "")) if c is not None]
    if image_graph:
        choices.append(ModelChoice(checkpoint=config.checkpoint, vae=config.vae, loras=list(config.loras)))
    plan = ModelPlan()
    if model is not None:
        folder = "checkpoints" if has_ckpt or not has_unet else "diffusion_models"
        _check_choice(model, folder, family)
        if folder == "checkpoints":
            plan.checkpoint = model
        else:
            plan.diffusion_model = model
    if vae is not None:
        _check_choice(vae, "vae", family)
        plan.vae = vae
    for field, folder, present in (
        ("checkpoint", "checkpoints", has_ckpt),
        ("diffusion_model", "diffusion_models", has_unet),
        ("text_encoder", "text_encoders", any("clip_name" in n.inputs for n in wf)),
        ("vae", "vae", has_ckpt or any("vae_name" in n.inputs for n in wf)),
    ):
        if getattr(plan, field) is not None or not present:
            continue
        for choice in choices:
            name = getattr(choice, field)
            if name is not None and _preference_fits(name, folder, family, key):
                setattr(plan, field, name)
                break
    if loras is not None:
        plan.loras = list(loras)
    elif has_ckpt or has_unet:
        plan.loras = next((list(c.loras) for c in choices if c.loras), [])
    return plan


def _check_choice(name: str, folder: str, family: str | None) -> None:
    found = family_of(name, folder)
    if not fits(found, family) or (folder == "checkpoints" and not _ships_as_checkpoint(found)):
        raise WorkflowError(
            f"{name!r} is a {_title(found)} model, but this graph is built for {_title(family)}: choose a "
            f"{folder} file of that family, or a workflow for the other one (config.workflows[...])"
        )


def _ships_as_checkpoint(family: str | None) -> bool:
    known = MODEL_FAMILIES.get(family or "")
    return known is None or known.checkpoint


def _preference_fits(name: str, folder: str, family: str | None, key: str) -> bool:
    found = family_of(name, folder)
    if fits(found, family) and (folder != "checkpoints" or _ships_as_checkpoint(found)):
        return True
    warnings.warn(
        f"comfy_nb: the preferred {folder} file {name!r} ({_title(found)}) does not fit the {key} graph, "
        f"built for {_title(family)}; it is not used. Set config.models[{key!r}] to choose per task type.",
        UserWarning,
        stacklevel=4,
    )
    return False


def resolve_models(wf: Workflow, defs: dict[str, NodeDef], family: str | None) -> list[str]:
    """Make every model file the graph names one the server has; returns the warnings given.

    A missing file is replaced only by a server file of the same known family (the first in the
    server's order); otherwise the error lists the server's files of that folder.
    """
    notes: list[str] = []
    for node in wf:
        spec_node = defs.get(node.class_type)
        if spec_node is None:
            continue
        for input_name, folder in MODEL_INPUTS.items():
            spec = spec_node.input(input_name)
            value = node.inputs.get(input_name)
            if spec is None or spec.options is None or not isinstance(value, str) or value in spec.options:
                continue
            offered = [str(o) for o in spec.options if o != "pixel_space"]
            wanted = family_of(value, folder)
            if wanted is None and input_name in ("ckpt_name", "unet_name"):
                wanted = family
            same = [o for o in offered if wanted is not None and family_of(o, folder) == wanted]
            if not same:
                listing = ", ".join(offered) if offered else "none"
                raise WorkflowError(
                    f"the server has no {folder} file {value!r} (node {node.describe()}, {_title(wanted)}) "
                    f"and none of that family to use instead; its {folder}: {listing}. Choose one with "
                    f"GenerationTask(...) or config.models[<task type or family>] (see ModelChoice), or put "
                    f"the file in the server's models/{folder}/ folder"
                )
            note = (
                f"comfy_nb: the server has no {folder} file {value!r}; using {same[0]!r}, also "
                f"{_title(wanted)}"
            )
            warnings.warn(note, UserWarning, stacklevel=3)
            notes.append(note)
            node.inputs[input_name] = same[0]
    return notes
