"""Preferences apply only where they fit the graph's model family; a missing model is replaced only
by one of the same known family, with a warning, and otherwise the error lists the server's files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from comfy_nb.config import ComfyConfig, LoraSpec, ModelChoice
from comfy_nb.errors import ConfigError, WorkflowError
from comfy_nb.protocol import family_of, validate_prompt
from comfy_nb.workflows import GenerationTask

URL = "http://127.0.0.1:8188"
SIMPLE = {"checkpoint": "sd15.safetensors", "vae": "vae-ft-mse.safetensors", "loras": [("detail.safetensors", 0.8)]}


def _classes(prompt: dict[str, Any]) -> list[str]:
    return [n["class_type"] for n in prompt.values()]


def _with_files(info: dict[str, Any], cls: str, name: str, files: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(info)
    out[cls]["input"]["required"][name][0][:] = files
    return out


@pytest.mark.parametrize(
    ("name", "folder", "family"),
    [
        ("v1-5-pruned-emaonly-fp16.safetensors", "checkpoints", "sd15"),
        ("sd_xl_base_1.0.safetensors", "checkpoints", "sdxl"),
        ("512-inpainting-ema.safetensors", "checkpoints", "sd15_inpaint"),
        ("hunyuan_video_t2v_720p_bf16.safetensors", "checkpoints", "hunyuan_video"),
        ("wan2.1_t2v_1.3B_fp16.safetensors", "diffusion_models", "wan21"),
        ("wan2.2_ti2v_5B_fp16.safetensors", "diffusion_models", "wan22_5b"),
        ("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders", "umt5_xxl"),
        ("wan_2.1_vae.safetensors", "vae", "wan21"),
        ("ae.safetensors", "vae", "flux"),
        ("RealESRGAN_x4plus.pth", "upscale_models", "upscale_4x"),
        ("my_model.safetensors", "checkpoints", None),
    ],
)
def test_family_from_official_file_names(name: str, folder: str, family: str | None) -> None:
    assert family_of(name, folder) == family


def test_sd_preferences_never_land_on_the_video_graph(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, **SIMPLE)
    prompt, _ = GenerationTask(type="video", prompt="fox", frames=9).to_prompt(config, filled_info)
    classes = _classes(prompt)
    assert "CheckpointLoaderSimple" not in classes and "LoraLoader" not in classes
    assert "LoraLoaderModelOnly" not in classes
    (unet,) = [n for n in prompt.values() if n["class_type"] == "UNETLoader"]
    assert unet["inputs"]["unet_name"] == "wan2.1_t2v_1.3B_fp16.safetensors"
    (vae,) = [n for n in prompt.values() if n["class_type"] == "VAELoader"]
    assert vae["inputs"]["vae_name"] == "wan_2.1_vae.safetensors"


def test_simple_preferences_keep_working_for_image_tasks(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, **SIMPLE)
    prompt, meta = GenerationTask(prompt="fox").to_prompt(config, filled_info)
    assert meta["model"] == "sd15.safetensors"
    assert {"LoraLoader", "VAELoader"} <= set(_classes(prompt))


def test_video_lora_goes_after_the_unet_loader_model_only(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(
        server_url=URL, models={"video": ModelChoice(loras=[LoraSpec(name="wan-motion.safetensors")])}
    )
    prompt, _ = GenerationTask(type="video", prompt="fox").to_prompt(config, filled_info)
    (lora_id,) = [k for k, n in prompt.items() if n["class_type"] == "LoraLoaderModelOnly"]
    unet_id = next(k for k, n in prompt.items() if n["class_type"] == "UNETLoader")
    assert prompt[lora_id]["inputs"]["model"] == [unet_id, 0]
    users = [n["class_type"] for n in prompt.values() if n["inputs"].get("model") == [lora_id, 0]]
    assert users == ["ModelSamplingSD3"]
    assert "LoraLoader" not in _classes(prompt)


def test_family_preferences_and_task_type_preferences(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(
        server_url=URL,
        checkpoint="sd15.safetensors",
        workflows={"image": "txt2img_sdxl", "grid": "grid"},
        models={"sdxl": ModelChoice(checkpoint="sd_xl_base_1.0.safetensors"), "grid": ModelChoice(vae="vae-ft-mse.safetensors")},
    )
    _, meta = GenerationTask(prompt="fox").to_prompt(config, filled_info)
    assert meta["model"] == "sd_xl_base_1.0.safetensors"  # the family's choice wins over the simple field
    prompt, meta = GenerationTask(type="grid", prompt="fox").to_prompt(config, filled_info)
    assert meta["model"] == "sd15.safetensors"  # no choice for sd15: the simple field
    assert "VAELoader" in _classes(prompt)


def test_a_preference_of_the_wrong_family_is_skipped_with_a_warning(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, checkpoint="wan2.1_t2v_1.3B_fp16.safetensors")
    with pytest.warns(UserWarning, match=r"wan2\.1_t2v_1\.3B_fp16\.safetensors.*does not fit the image graph"):
        _, meta = GenerationTask(prompt="fox").to_prompt(config, filled_info)
    assert meta["model"] == "v1-5-pruned-emaonly-fp16.safetensors"


def test_a_chosen_model_of_the_wrong_family_is_an_error(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL)
    with pytest.raises(WorkflowError, match=r"HunyuanVideo.*built for Stable Diffusion 1\.5"):
        GenerationTask(prompt="fox", checkpoint="hunyuan_video_t2v_720p_bf16.safetensors").to_prompt(
            config, filled_info
        )
    with pytest.raises(WorkflowError, match=r"Stable Diffusion 1\.5.*built for Wan 2\.1"):
        GenerationTask(type="video", prompt="fox", vae="vae-ft-mse.safetensors").to_prompt(config, filled_info)


def test_a_missing_template_model_is_replaced_by_one_of_its_family(filled_info: dict[str, Any]) -> None:
    info = _with_files(
        filled_info,
        "CheckpointLoaderSimple",
        "ckpt_name",
        ["hunyuan_video_t2v_720p_bf16.safetensors", "sd_xl_base_1.0.safetensors", "dreamshaper_8.safetensors"],
    )
    with pytest.warns(UserWarning, match=r"no checkpoints file 'v1-5-pruned-emaonly-fp16.safetensors'; using "
                      r"'dreamshaper_8.safetensors'"):
        prompt, meta = GenerationTask(prompt="fox").to_prompt(ComfyConfig(server_url=URL), info)
    assert meta["model"] == "dreamshaper_8.safetensors"
    assert validate_prompt(prompt, info, strict_combos=True).ok


def test_no_model_of_the_family_is_an_error_listing_the_server_files(filled_info: dict[str, Any]) -> None:
    """The old behaviour took the server's first checkpoint, whatever it was (here a video DiT)."""
    info = _with_files(
        filled_info,
        "CheckpointLoaderSimple",
        "ckpt_name",
        ["hunyuan_video_t2v_720p_bf16.safetensors", "sd_xl_base_1.0.safetensors"],
    )
    with pytest.raises(WorkflowError) as err:
        GenerationTask(prompt="fox").to_prompt(ComfyConfig(server_url=URL), info)
    text = str(err.value)
    assert "no checkpoints file 'v1-5-pruned-emaonly-fp16.safetensors'" in text
    assert "hunyuan_video_t2v_720p_bf16.safetensors, sd_xl_base_1.0.safetensors" in text
    assert "config.models" in text and "GenerationTask" in text


def test_an_unknown_missing_file_is_never_replaced(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, loras=[LoraSpec(name="gone.safetensors")])
    with pytest.raises(WorkflowError, match=r"no loras file 'gone.safetensors'.*detail.safetensors"):
        GenerationTask(prompt="fox").to_prompt(config, filled_info)


def test_unknown_preference_keys_are_refused(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, models={"vidoe": ModelChoice(vae="x.safetensors")})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'vidoe'.*video.*wan21"):
        GenerationTask(prompt="fox").to_prompt(config, filled_info)


def test_inpaint_for_an_inpainting_model(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(server_url=URL, workflows={"inpaint": "inpaint_model"})
    prompt, meta = GenerationTask(type="inpaint", prompt="fox", init_image="example.png").to_prompt(
        config, filled_info
    )
    assert meta["model"] == "512-inpainting-ema.safetensors" and meta["denoise"] == 1.0
    encode = next(n for n in prompt.values() if n["class_type"] == "VAEEncodeForInpaint")
    load = next(k for k, n in prompt.items() if n["class_type"] == "LoadImage")
    assert encode["inputs"]["mask"] == [load, 1]  # no mask image: the picture's alpha


def test_model_choices_survive_save_and_load(tmp_path: Any) -> None:
    config = ComfyConfig(
        server_url=URL,
        checkpoint="sd15.safetensors",
        models={"video": ModelChoice(vae="wan_2.1_vae.safetensors", loras=[LoraSpec(name="wan-motion.safetensors")])},
    )
    loaded = ComfyConfig.load(config.save(tmp_path / "config.json"))
    assert loaded.models == config.models and loaded.checkpoint == "sd15.safetensors"
    with pytest.raises(ConfigError, match=r"models\.video\.vae_name"):
        ComfyConfig(server_url=URL, models={"video": {"vae_name": "x"}})


def test_preferences_for_a_graph_without_their_loaders_are_ignored(filled_info: dict[str, Any]) -> None:
    choice = ModelChoice(vae="vae-ft-mse.safetensors", loras=[LoraSpec(name="detail.safetensors")])
    config = ComfyConfig(server_url=URL, models={"upscale": choice})
    prompt, _ = GenerationTask(type="upscale", init_image="example.png").to_prompt(config, filled_info)
    assert not {"VAELoader", "LoraLoader", "LoraLoaderModelOnly"} & set(_classes(prompt))


def test_a_missing_text_encoder_is_replaced_by_one_of_its_family(filled_info: dict[str, Any]) -> None:
    """What the real check did: the Flux template names t5xxl_fp16, the server has the fp8 T5 only."""
    info = _with_files(filled_info, "DualCLIPLoader", "clip_name2", ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"])
    info = _with_files(info, "DualCLIPLoader", "clip_name1", ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"])
    config = ComfyConfig(server_url=URL, workflows={"image": "txt2img_flux"})
    with pytest.warns(UserWarning, match=r"no text_encoders file 't5xxl_fp16.safetensors'; using "
                      r"'t5xxl_fp8_e4m3fn.safetensors', also family t5xxl"):
        prompt, _ = GenerationTask(prompt="fox").to_prompt(config, info)
    (loader,) = [n for n in prompt.values() if n["class_type"] == "DualCLIPLoader"]
    assert loader["inputs"]["clip_name2"] == "t5xxl_fp8_e4m3fn.safetensors"
