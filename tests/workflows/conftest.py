"""Captures from a real ComfyUI 0.3.64 server, plus an object_info whose model lists are filled."""

from __future__ import annotations

import copy
from typing import Any

import pytest

MODELS = {
    ("CheckpointLoaderSimple", "ckpt_name"): [
        "v1-5-pruned-emaonly-fp16.safetensors",
        "sd_xl_base_1.0.safetensors",
        "512-inpainting-ema.safetensors",
        "sd15.safetensors",
    ],
    ("UNETLoader", "unet_name"): ["wan2.1_t2v_1.3B_fp16.safetensors", "flux1-dev.safetensors"],
    ("CLIPLoader", "clip_name"): ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    ("DualCLIPLoader", "clip_name1"): ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    ("DualCLIPLoader", "clip_name2"): ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    ("LoraLoader", "lora_name"): ["detail.safetensors", "style.safetensors"],
    ("LoraLoaderModelOnly", "lora_name"): ["detail.safetensors", "style.safetensors", "wan-motion.safetensors"],
    ("VAELoader", "vae_name"): ["vae-ft-mse.safetensors", "wan_2.1_vae.safetensors", "ae.safetensors"],
    ("UpscaleModelLoader", "model_name"): ["RealESRGAN_x4plus.pth"],
}
"""What a real install holds: every built-in template's files, and a few more."""


@pytest.fixture(scope="session")
def filled_info(object_info: dict[str, Any]) -> dict[str, Any]:
    """The capture had no model files; give the loaders some, as a real install would."""
    info = copy.deepcopy(object_info)
    for (cls, name), files in MODELS.items():
        spec = info[cls]["input"]["required"][name]
        if isinstance(spec[0], list):
            spec[0][:] = files
        else:
            spec[1]["options"][:] = files
    return info
