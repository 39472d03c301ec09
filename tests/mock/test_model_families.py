"""The mock refuses what a real ComfyUI refuses when a model file is of the wrong kind for its loader
or a latent does not fit the model: same node, same exception type, ComfyUI's own words."""

from __future__ import annotations

import copy
from typing import Any

from _mockwire import Http, Recorder

from comfy_nb.mock import MockServer

HUNYUAN = "hunyuan_video_t2v_720p_bf16.safetensors"
# comfy_nb's video template before it was shaped like the official one: the video DiT in CheckpointLoaderSimple.
OLD_VIDEO_TEMPLATE: dict[str, Any] = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": HUNYUAN}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 64, "height": 64, "length": 5, "batch_size": 1}},
    "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": 2, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
    "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    "7": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["6", 0], "filename_prefix": "v", "fps": 8.0, "lossless": False, "quality": 80, "method": "default"}},
}
MODELS: dict[str, Any] = {
    "checkpoints": ["sd15-mock.safetensors", HUNYUAN],
    "diffusion_models": ["wan2.1_t2v_1.3B_fp16.safetensors"],
    "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["vae-ft-mse-mock.safetensors", "wan_2.1_vae.safetensors"],
}


async def _error(server: MockServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """Run a prompt the server accepts; return its ``execution_error`` data."""
    async with Recorder(server.url) as ws, Http(server.url) as http:
        prompt_id = await http.submit(prompt, ws.client_id)
        await ws.wait_done(prompt_id)
    errors = [m["data"] for m in ws.messages if isinstance(m, dict) and m.get("type") == "execution_error"]
    assert len(errors) == 1, ws.messages
    error: dict[str, Any] = errors[0]
    return error


async def test_the_old_video_template_fails_at_the_text_encoder_as_on_a_real_server() -> None:
    with MockServer(models=MODELS) as server:
        error = await _error(server, OLD_VIDEO_TEMPLATE)
    assert (error["node_id"], error["node_type"]) in {("2", "CLIPTextEncode"), ("3", "CLIPTextEncode")}
    assert error["exception_type"] == "RuntimeError"
    assert error["exception_message"] == (
        "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint "
        "does not contain a valid clip or text encoder model.\n"
    )


async def test_an_image_checkpoint_given_a_video_latent_fails_in_the_sampler() -> None:
    prompt = copy.deepcopy(OLD_VIDEO_TEMPLATE)
    prompt["1"]["inputs"]["ckpt_name"] = "sd15-mock.safetensors"  # the user's SD preference on the old video graph
    with MockServer(models=MODELS) as server:
        error = await _error(server, prompt)
    assert (error["node_id"], error["exception_type"]) == ("5", "RuntimeError")
    # the real-server run: 64x64, 5 frames -> 2 latent frames; cond+uncond batched
    assert error["exception_message"] == (
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 4, 2, 8, 8]\n"
    )


async def test_the_vae_of_a_diffusion_model_alone_is_invalid() -> None:
    prompt: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": HUNYUAN}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}},
    }
    with MockServer(models=MODELS) as server:
        error = await _error(server, prompt)
    assert (error["node_type"], error["exception_type"]) == ("VAEEncode", "RuntimeError")
    assert error["exception_message"].startswith("ERROR: VAE is invalid: None\n")


async def test_an_image_model_refuses_a_latent_from_a_video_vae() -> None:
    prompt: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15-mock.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["1", 1]}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "5": {"class_type": "ImageScale", "inputs": {"image": ["4", 0], "upscale_method": "bilinear", "width": 64, "height": 64, "crop": "disabled"}},
        "6": {"class_type": "VAEEncode", "inputs": {"pixels": ["5", 0], "vae": ["3", 0]}},
        "7": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": 2, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["6", 0], "denoise": 0.5}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    }
    with MockServer(models=MODELS) as server:
        error = await _error(server, prompt)
    assert (error["node_type"], error["exception_type"]) == ("KSampler", "RuntimeError")
    # what the real server said: the Wan VAE's latent is a one-frame video
    assert error["exception_message"] == (
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [1, 16, 1, 8, 8]\n"
    )


async def test_files_can_be_given_a_family_their_names_do_not_say() -> None:
    """``{file: family}``: a checkpoint whose name says nothing is a Wan diffusion model here."""
    prompt = copy.deepcopy(OLD_VIDEO_TEMPLATE)
    prompt["1"]["inputs"]["ckpt_name"] = "model.safetensors"
    with MockServer(models={"checkpoints": {"model.safetensors": "wan21"}}) as server:
        error = await _error(server, prompt)
    assert error["node_type"] == "CLIPTextEncode"
