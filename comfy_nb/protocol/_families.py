"""Model families: what a ComfyUI server does with a model file depends on its architecture.

A real server tells the architecture from the weights when it loads a file, and says nothing about
it before: ``/object_info`` lists bare file names, and ``/view_metadata`` returns a safetensors
file's ``__metadata__``, which the repackaged files users download (Comfy-Org's) mostly leave empty.
So comfy_nb knows a file's family from its name, by the patterns the official templates' files
follow; an unknown name has no family, and nothing is ever substituted for it or by it.

The facts per family (latent channels and dimensions, whether it ships as one checkpoint with its
text encoder and VAE) are ComfyUI's ``latent_formats`` and ``supported_models``; the mock uses them
to refuse what a real server refuses, and the workflows to keep preferences where they fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MODEL_FAMILIES", "MODEL_INPUTS", "ModelFamily", "family_of", "fits"]


@dataclass(frozen=True)
class ModelFamily:
    name: str
    title: str
    latent_channels: int
    video: bool
    """A 3-D (frames × height × width) latent; image families take 2-D latents."""
    checkpoint: bool
    """Ships as one checkpoint with CLIP and VAE (``CheckpointLoaderSimple``); else a diffusion model
    alone (``UNETLoader``) beside separate text encoders and VAE."""


MODEL_FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        ModelFamily("sd15", "Stable Diffusion 1.5", 4, video=False, checkpoint=True),
        ModelFamily("sd15_inpaint", "Stable Diffusion 1.5 inpainting", 4, video=False, checkpoint=True),
        ModelFamily("sdxl", "Stable Diffusion XL", 4, video=False, checkpoint=True),
        ModelFamily("flux", "Flux.1", 16, video=False, checkpoint=False),
        ModelFamily("wan21", "Wan 2.1 (and 2.2 14B)", 16, video=True, checkpoint=False),
        ModelFamily("wan22_5b", "Wan 2.2 5B", 48, video=True, checkpoint=False),
        ModelFamily("hunyuan_video", "HunyuanVideo", 16, video=True, checkpoint=False),
        ModelFamily("ltxv", "LTX-Video", 128, video=True, checkpoint=True),
        ModelFamily("svd", "Stable Video Diffusion", 4, video=True, checkpoint=True),
    )
}
"""Model families by name."""

MODEL_INPUTS: dict[str, str] = {
    "ckpt_name": "checkpoints",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "vae_name": "vae",
    "lora_name": "loras",
    "model_name": "upscale_models",
}
"""Loader input name → the model folder whose files its combo lists (core loaders)."""

# (folder, pattern, family), first match wins; patterns see the lower-cased file name without folders.
_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("diffusion_models", r"wan2\.?2.*5b", "wan22_5b"),
    ("diffusion_models", r"wan", "wan21"),
    ("diffusion_models", r"hunyuan.?video", "hunyuan_video"),
    ("diffusion_models", r"flux", "flux"),
    ("checkpoints", r"hunyuan.?video", "hunyuan_video"),
    ("checkpoints", r"wan2\.?2.*5b", "wan22_5b"),
    ("checkpoints", r"wan2|wan_2", "wan21"),
    ("checkpoints", r"flux", "flux"),
    ("checkpoints", r"ltx", "ltxv"),
    ("checkpoints", r"svd", "svd"),
    ("checkpoints", r"sdxl|sd_xl|xl_base|xl-base|(^|[-_])xl[-_.]", "sdxl"),
    ("checkpoints", r"inpaint", "sd15_inpaint"),
    ("checkpoints", r"v1-5|sd15|sd-15|sd_15|sd1\.5|sd-v1|dreamshaper_8|realisticvision", "sd15"),
    ("text_encoders", r"umt5", "umt5_xxl"),
    ("text_encoders", r"t5xxl|t5-xxl|t5_xxl", "t5xxl"),
    ("text_encoders", r"clip_l", "clip_l"),
    ("text_encoders", r"llava_llama3", "llava_llama3"),
    ("vae", r"wan2\.2_vae|wan_2\.2_vae|wan22_vae", "wan22_5b"),
    ("vae", r"wan", "wan21"),
    ("vae", r"hunyuan.?video", "hunyuan_video"),
    ("vae", r"^ae\.|flux", "flux"),
    ("vae", r"sdxl|sd_xl", "sdxl"),
    ("vae", r"vae-ft-m|sd15|sd-vae|kl-f8", "sd15"),
    ("upscale_models", r"x4|4x", "upscale_4x"),
    ("upscale_models", r"x2|2x", "upscale_2x"),
)
_COMPILED = tuple((folder, re.compile(pattern), family) for folder, pattern, family in _PATTERNS)
_SAME_FILES = {"clip": "text_encoders", "unet": "diffusion_models"}  # legacy folder names


def family_of(file_name: str, folder: str) -> str | None:
    """The family a file of ``folder`` belongs to, known from its name; ``None`` when unknown."""
    folder = _SAME_FILES.get(folder, folder)
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for where, pattern, family in _COMPILED:
        if where == folder and pattern.search(base):
            return family
    return None


def fits(file_family: str | None, graph_family: str | None) -> bool:
    """Whether a file of ``file_family`` can stand in a graph built for ``graph_family``.

    Unknown is not a mismatch; the single-file image checkpoints (SD1.5, SDXL and their inpainting
    variants) load, encode and sample through the same nodes, so they stand in for each other.
    """
    if file_family is None or graph_family is None or file_family == graph_family:
        return True
    a, b = MODEL_FAMILIES.get(file_family), MODEL_FAMILIES.get(graph_family)
    return a is not None and b is not None and _plain_image(a) and _plain_image(b)


def _plain_image(family: ModelFamily) -> bool:
    return family.checkpoint and not family.video
