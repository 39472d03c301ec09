"""Captures from a real ComfyUI 0.3.64 server, plus an object_info whose model lists are filled."""

from __future__ import annotations

import copy
from typing import Any

import pytest

MODELS = {
    ("CheckpointLoaderSimple", "ckpt_name"): [
        "v1-5-pruned-emaonly-fp16.safetensors",
        "hunyuan_video_t2v_720p_bf16.safetensors",
        "sd15.safetensors",
    ],
    ("LoraLoader", "lora_name"): ["detail.safetensors", "style.safetensors"],
    ("LoraLoaderModelOnly", "lora_name"): ["detail.safetensors", "style.safetensors"],
    ("VAELoader", "vae_name"): ["vae-ft-mse.safetensors"],
    ("UpscaleModelLoader", "model_name"): ["RealESRGAN_x4plus.pth"],
}


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
