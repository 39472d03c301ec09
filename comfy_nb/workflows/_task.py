"""``GenerationTask``: a generation request by parameters, turned into a prompt from the config's workflow.

``init_image`` and ``mask`` are names of files already in the server's ``input/`` folder (what
``client.upload_image`` returns). The client may accept local files, images or arrays and upload
them first, replacing the field with the server's name before calling ``to_prompt``.

A ``seed=None`` is drawn here, on the client, because the server never randomises seeds for API
prompts; it is kept in ``resolved_seed`` and in the meta so the image can be reproduced.
"""

from __future__ import annotations

import secrets
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..config import ComfyConfig, LoraSpec
from ..errors import ConfigError, WorkflowError
from ..protocol import NodeDef
from ._bind import bind_parameters
from ._defs import ObjectInfo, as_node_defs
from ._models import plan_models, resolve_models
from ._templates import TEMPLATE_FAMILIES, TEMPLATES, load_template
from ._workflow import Workflow

__all__ = ["GenerationTask", "TaskType"]

TaskType = Literal["image", "video", "upscale", "inpaint", "grid"]
_TYPES = ("image", "video", "upscale", "inpaint", "grid")
_SEED_MAX = 2**64 - 1
_SIZE_MIN, _SIZE_MAX = 64, 8192
_CFG_MAX = 100.0


@dataclass(kw_only=True)
class GenerationTask:
    """What to generate; ``None`` fields keep the workflow's (or the config's) value."""

    type: TaskType = "image"
    prompt: str = ""
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    checkpoint: str | None = None
    """The main model: the checkpoint, or the diffusion model of a graph that loads one alone."""
    vae: str | None = None
    loras: list[tuple[str, float] | tuple[str, float, float] | LoraSpec] | None = None
    """``None``: the config's LoRAs; ``[]``: none."""
    init_image: Any = None
    """Server-side file name (the client uploads local images first)."""
    mask: Any = None
    """Server-side mask file name: white (red channel) marks what to repaint; ``None`` for an inpaint
    task takes the mask from the init image's alpha (transparent = repaint)."""
    denoise: float | None = None
    upscale_model: str | None = None
    scale_by: float | None = None
    frames: int | None = None
    fps: float | None = None
    batch_size: int | None = None
    resolved_seed: int = field(init=False, default=0)
    """The seed actually used: ``seed``, or the one drawn for ``seed=None``."""

    def __repr__(self) -> str:
        """Only the fields that were set (no wall of ``=None``; no drawn seed, so it prints the same twice)."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if not f.init or value == default:
                continue
            shown = repr(value) if value is None or isinstance(value, (str, int, float, list, tuple)) else (
                f"<{type(value).__name__}>")
            parts.append(f"{f.name}={shown}")
        return f"GenerationTask({', '.join(parts)})"

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise WorkflowError("invalid GenerationTask: " + "; ".join(problems))
        self.resolved_seed = self.seed if self.seed is not None else secrets.randbelow(2**32)

    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.type not in _TYPES:
            out.append(f"type {self.type!r} is not one of {', '.join(_TYPES)}")
        if self.type != "upscale" and not (isinstance(self.prompt, str) and self.prompt.strip()):
            out.append(f"the {self.type} task needs a prompt")
        if (self.width is None) != (self.height is None):
            out.append("give both width and height, or neither")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value % 8 or not _SIZE_MIN <= value <= _SIZE_MAX):
                out.append(f"{name} must be a multiple of 8 in {_SIZE_MIN}..{_SIZE_MAX}, got {value!r}")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= _SEED_MAX):
            out.append(f"seed must be an integer in 0..2^64-1, got {self.seed!r}")
        for name in ("steps", "batch_size", "frames"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                out.append(f"{name} must be an integer >= 1, got {value!r}")
        if self.cfg_scale is not None and not (
            _is_number(self.cfg_scale) and 0 <= self.cfg_scale <= _CFG_MAX
        ):
            out.append(f"cfg_scale must be a number in 0..{_CFG_MAX:g}, got {self.cfg_scale!r}")
        if self.denoise is not None and not (_is_number(self.denoise) and 0 <= self.denoise <= 1):
            out.append(f"denoise must be in 0..1, got {self.denoise!r}")
        for name in ("scale_by", "fps"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                out.append(f"{name} must be a number > 0, got {value!r}")
        if self.type in ("upscale", "inpaint") and self.init_image is None:
            out.append(f"the {self.type} task needs init_image (the name of an uploaded image)")
        return out

    # -- building the prompt -------------------------------------------------------------------
    def to_prompt(
        self, config: ComfyConfig, node_defs: ObjectInfo | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(api prompt, meta)`` from the config's workflow for this type, validated when node defs are given."""
        workflow = self.workflow(config, node_defs)
        if node_defs is not None:
            workflow.validate(node_defs)
        return workflow.to_api(), self._meta(workflow)

    def workflow(self, config: ComfyConfig, node_defs: ObjectInfo | None = None) -> Workflow:
        """The config's workflow for this task with every parameter bound (not yet validated)."""
        if not config.is_configured:
            raise ConfigError(
                "comfy_nb is not configured: set config.server_url (and save it with config.save())"
            )
        defs = as_node_defs(node_defs) if node_defs is not None else None
        if defs is not None:
            self._check_against(defs)
        key = self._workflow_key(config)
        workflow = self._load_workflow(config, node_defs)
        source = config.workflows.get(key)
        family = TEMPLATE_FAMILIES.get(source) if source in TEMPLATES else None
        self._bind(workflow, config, key, family)
        if defs is not None and source in TEMPLATES:
            resolve_models(workflow, defs, family)
        return workflow

    def _workflow_key(self, config: ComfyConfig) -> str:
        if self.type == "image" and self.init_image is not None and "img2img" in config.workflows:
            return "img2img"
        return self.type

    def _load_workflow(self, config: ComfyConfig, node_defs: ObjectInfo | None) -> Workflow:
        key = self._workflow_key(config)
        source = config.workflows.get(key)
        if not source:
            raise ConfigError(
                f"no workflow set for task type {key!r}: set config.workflows[{key!r}] to a template "
                f"({', '.join(TEMPLATES)}) or to a workflow file"
            )
        if source in TEMPLATES:
            return load_template(source)
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config.workflows[{key!r}] = {source!r} is neither a template ({', '.join(TEMPLATES)}) "
                "nor an existing workflow file"
            )
        return Workflow.load(path, node_defs)

    def _bind(self, wf: Workflow, config: ComfyConfig, key: str, family: str | None) -> None:
        # The config's preferred models apply where they fit the graph; the task's own choices must
        # apply (an error says why they cannot).
        loras = None
        if self.loras is not None:
            loras = [i if isinstance(i, LoraSpec) else LoraSpec.model_validate(i) for i in self.loras]
        plan = plan_models(wf, config, key, family, model=self.checkpoint, vae=self.vae, loras=loras)
        if plan.checkpoint:
            wf.set_checkpoint(plan.checkpoint)
        if plan.diffusion_model:
            wf.set_diffusion_model(plan.diffusion_model)
        if plan.text_encoder:
            wf.set_text_encoder(plan.text_encoder)
        if plan.vae:
            wf.set_vae(plan.vae)
        for lora in plan.loras:
            wf.add_lora(lora.name, lora.strength_model, lora.strength_clip)
        has_upscaler = any("model_name" in n.inputs for n in wf)
        upscale_model = self.upscale_model or (config.upscale_model if has_upscaler else None)
        if upscale_model:
            wf.set_upscale_model(upscale_model)
        if self.init_image is not None:
            wf.set_image(_server_name(self.init_image, "init_image"))
        if self.mask is not None:
            wf.set_mask(_server_name(self.mask, "mask"))
        elif self.type == "inpaint":
            wf.set_mask_from_alpha()
        if self.scale_by is not None:
            wf.set_scale_by(self.scale_by)
        if self.type == "upscale" and not _has_sampler(wf):
            return  # a pure model upscale: nothing to sample
        sized = self.width is not None and self.height is not None
        bind_parameters(wf, {
            "prompt": self.prompt, "negative_prompt": self.negative_prompt, "seed": self.resolved_seed,
            "sampler": self.sampler, "scheduler": self.scheduler, "steps": self.steps, "cfg_scale": self.cfg_scale,
            "denoise": self.denoise, "width": self.width if sized else None, "height": self.height if sized else None,
            "batch_size": self.batch_size, "frames": self.frames, "fps": self.fps,
        })

    def _meta(self, wf: Workflow) -> dict[str, Any]:
        params = wf.parameters()
        meta: dict[str, Any] = {
            "type": self.type,
            "prompt": self.prompt,
            "negative_prompt": params.get("negative_prompt")
            if self.negative_prompt is None
            else self.negative_prompt,
            "seed": self.resolved_seed if "seed" in params else None,
        }
        for key in (
            "sampler",
            "scheduler",
            "steps",
            "cfg",
            "model",
            "width",
            "height",
            "batch_size",
            "denoise",
        ):
            meta[key] = params.get(key)
        for key in ("init_image", "mask", "frames", "fps", "scale_by"):
            if getattr(self, key) is not None:
                meta[key] = getattr(self, key)
        return meta

    def _check_against(self, defs: dict[str, NodeDef]) -> None:
        """Check sampler, scheduler, steps and CFG against the server's KSampler definition."""
        sampler_def = defs.get("KSampler")
        if sampler_def is None:
            return
        problems: list[str] = []
        for field_name, input_name in (("sampler", "sampler_name"), ("scheduler", "scheduler")):
            value = getattr(self, field_name)
            spec = sampler_def.input(input_name)
            if value is not None and spec is not None and spec.options and value not in spec.options:
                problems.append(
                    f"{field_name} {value!r} is not one of the server's: {', '.join(map(str, spec.options))}"
                )
        for field_name, input_name in (("steps", "steps"), ("cfg_scale", "cfg")):
            value = getattr(self, field_name)
            spec = sampler_def.input(input_name)
            if value is None or spec is None:
                continue
            low, high = spec.min, spec.max
            if (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"{field_name} {value!r} is outside the server's range {low}..{high}")
        latent = defs.get("EmptyLatentImage")
        for name in ("width", "height"):
            spec = latent.input(name) if latent else None
            value = getattr(self, name)
            if value is not None and spec is not None and spec.max is not None and value > spec.max:
                problems.append(f"{name} {value} is above the server's maximum {spec.max}")
        if problems:
            raise WorkflowError("invalid GenerationTask for this server: " + "; ".join(problems))


def _has_sampler(wf: Workflow) -> bool:
    try:
        wf.samplers()
    except WorkflowError:
        return False
    return True


def _server_name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise WorkflowError(
            f"{field_name} must be the name of a file on the server (upload it first with "
            f"client.upload_image(...) and use the name it returns), got {type(value).__name__}"
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
