"""Built-in API-format templates, shipped as package data in ``comfy_nb/workflows/templates/``.

Each is shaped like the official ComfyUI workflow template for its task and model family (the
``comfyui-workflow-templates`` package): single-file families load with ``CheckpointLoaderSimple``,
the others with ``UNETLoader`` + ``CLIPLoader`` + ``VAELoader``. Each uses only core node classes,
titles its nodes by role ("Positive", "Negative", "Sampler", "Latent", "Image", "Mask", ...) and
validates against a real server's ``object_info`` once its model names exist there.
"""

from __future__ import annotations

import json
from importlib import resources

from ..errors import WorkflowError
from ._workflow import Workflow

__all__ = ["TEMPLATES", "TEMPLATE_FAMILIES", "load_template"]

TEMPLATES: dict[str, str] = {
    "txt2img": "text to image, SD1.5 checkpoint (official default): empty latent, KSampler, SaveImage",
    "txt2img_sdxl": "text to image, SDXL base checkpoint at 1024×1024 (official SDXL example, base pass)",
    "txt2img_flux": "text to image, Flux.1 dev (official template): UNETLoader + DualCLIPLoader(flux) + VAELoader, "
    "FluxGuidance 3.5, no negative prompt (ConditioningZeroOut), cfg 1",
    "img2img": "image to image: LoadImage resized to the size, VAEEncode, KSampler at denoise 0.87",
    "inpaint": "inpainting with any checkpoint: InpaintModelConditioning with a noise mask; mask from a "
    "mask image (white = repaint) or the image's alpha",
    "inpaint_model": "inpainting with an inpainting checkpoint: VAEEncodeForInpaint at denoise 1.0",
    "upscale": "model upscale: LoadImage, UpscaleModelLoader + ImageUpscaleWithModel, ImageScaleBy",
    "hires_fix": "text to image, then LatentUpscaleBy and a second KSampler at denoise 0.5",
    "video": "text to video, Wan 2.1 T2V 1.3B: UNETLoader + CLIPLoader(wan) + VAELoader, ModelSamplingSD3, "
    "EmptyHunyuanLatentVideo, KSampler, SaveAnimatedWEBP",
    "grid": "text to image with a batch of 4 latents (one image per noise of the batch)",
}
"""Template name → what it does."""

TEMPLATE_FAMILIES: dict[str, str | None] = {
    "txt2img": "sd15",
    "txt2img_sdxl": "sdxl",
    "txt2img_flux": "flux",
    "img2img": "sd15",
    "inpaint": "sd15",
    "inpaint_model": "sd15_inpaint",
    "upscale": None,
    "hires_fix": "sd15",
    "video": "wan21",
    "grid": "sd15",
}
"""Template name → the model family its graph is built for (``protocol.MODEL_FAMILIES``)."""


def load_template(name: str) -> Workflow:
    """A fresh copy of a built-in template."""
    if name not in TEMPLATES:
        raise WorkflowError(f"no built-in template {name!r}; templates: {', '.join(TEMPLATES)}")
    text = (
        resources.files(__package__)
        .joinpath("templates")
        .joinpath(f"{name}.json")
        .read_text(encoding="utf-8")
    )
    return Workflow(json.loads(text), name=name)
