"""The mock's model loaders: every file carries a model family, and a loader given a file of the
wrong kind behaves like the real one (a diffusion model alone in ``CheckpointLoaderSimple`` loads,
but gives no CLIP and an empty VAE, so the nodes using them fail with ComfyUI's own words)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..protocol import MODEL_FAMILIES
from ._nodes import (
    ClipRef,
    ClipVisionRef,
    ModelRef,
    NodeContext,
    UpscaleModelRef,
    VaeRef,
    register,
    require_model,
)

__all__: list[str] = []


def _ships_clip(family: str | None) -> bool:
    known = MODEL_FAMILIES.get(family or "")
    return known is None or known.checkpoint


@register("CheckpointLoaderSimple")
async def checkpoint_loader(ctx: NodeContext, ckpt_name: str) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "checkpoints", ckpt_name)
    family = ctx.family("checkpoints", ckpt_name)
    model = ModelRef(ckpt_name, family=family)
    if not _ships_clip(family):  # a diffusion model alone: no text encoder, no VAE weights in the file
        return (model, None, VaeRef(ckpt_name, family, valid=False)), None
    return (model, ClipRef(ckpt_name), VaeRef(ckpt_name, family)), None


@register("ImageOnlyCheckpointLoader")
async def image_only_checkpoint_loader(ctx: NodeContext, ckpt_name: str) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "checkpoints", ckpt_name)
    family = ctx.family("checkpoints", ckpt_name)
    return (ModelRef(ckpt_name, family=family), ClipVisionRef(ckpt_name), VaeRef(ckpt_name, family)), None


@register("UNETLoader")
async def unet_loader(ctx: NodeContext, unet_name: str, weight_dtype: str = "default") -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "diffusion_models", unet_name)
    return (ModelRef(unet_name, family=ctx.family("diffusion_models", unet_name)),), None


@register("CLIPLoader")
async def clip_loader(
    ctx: NodeContext, clip_name: str, type: str = "stable_diffusion", device: str = "default"
) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "text_encoders", clip_name)
    return (ClipRef(clip_name),), None


@register("DualCLIPLoader")
async def dual_clip_loader(
    ctx: NodeContext, clip_name1: str, clip_name2: str, type: str, device: str = "default"
) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "text_encoders", clip_name1)
    require_model(ctx, "text_encoders", clip_name2)
    return (ClipRef(f"{clip_name1}+{clip_name2}"),), None


@register("VAELoader")
async def vae_loader(ctx: NodeContext, vae_name: str) -> tuple[tuple[Any, ...], None]:
    if vae_name != "pixel_space":
        require_model(ctx, "vae", vae_name)
    return (VaeRef(vae_name, ctx.family("vae", vae_name)),), None


@register("LoraLoader")
async def lora_loader(
    ctx: NodeContext, model: ModelRef, clip: ClipRef, lora_name: str, strength_model: float, strength_clip: float
) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "loras", lora_name)
    return (
        replace(model, loras=(*model.loras, (lora_name, float(strength_model)))),
        replace(clip, loras=(*clip.loras, (lora_name, float(strength_clip)))),
    ), None


@register("LoraLoaderModelOnly")
async def lora_loader_model_only(
    ctx: NodeContext, model: ModelRef, lora_name: str, strength_model: float
) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "loras", lora_name)
    return (replace(model, loras=(*model.loras, (lora_name, float(strength_model)))),), None


@register("UpscaleModelLoader")
async def upscale_model_loader(ctx: NodeContext, model_name: str) -> tuple[tuple[Any, ...], None]:
    require_model(ctx, "upscale_models", model_name)
    m = re.search(r"(\d+)x", model_name, re.IGNORECASE)
    return (UpscaleModelRef(model_name, max(1, min(8, int(m.group(1)))) if m else 4),), None


@register("VideoLinearCFGGuidance")
async def video_linear_cfg(ctx: NodeContext, model: ModelRef, min_cfg: float) -> tuple[tuple[Any, ...], None]:
    return (replace(model, min_cfg=float(min_cfg)),), None


@register("ModelSamplingSD3")
async def model_sampling_sd3(ctx: NodeContext, model: ModelRef, shift: float) -> tuple[tuple[Any, ...], None]:
    return (model,), None
