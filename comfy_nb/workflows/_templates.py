"""Built-in API-format templates, shipped as package data in ``comfy_nb/workflows/templates/``.

Each uses only core node classes, titles its nodes by role ("Positive", "Negative", "Sampler",
"Latent", "Image", "Mask", ...) and validates against a real server's ``object_info`` once its
model names exist there.
"""

from __future__ import annotations

import json
from importlib import resources

from ..errors import WorkflowError
from ._workflow import Workflow

__all__ = ["TEMPLATES", "load_template"]

TEMPLATES: dict[str, str] = {
    "txt2img": "text to image: checkpoint, two prompts, empty latent, KSampler, SaveImage",
    "img2img": "image to image: LoadImage resized to the size, VAEEncode, KSampler at denoise 0.75",
    "inpaint": "inpainting: LoadImage + LoadImageMask (white = repaint, red channel), VAEEncodeForInpaint",
    "upscale": "model upscale: LoadImage, UpscaleModelLoader + ImageUpscaleWithModel, ImageScaleBy",
    "hires_fix": "text to image, then LatentUpscaleBy and a second KSampler at denoise 0.5",
    "video": "text to video: EmptyHunyuanLatentVideo, KSampler, SaveAnimatedWEBP",
    "grid": "text to image with a batch of 4 latents (one image per noise of the batch)",
}
"""Template name → what it does."""


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
