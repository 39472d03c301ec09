"""Role binding follows the graph on the templates and on the captured workflows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from comfy_nb.errors import PromptValidationError, WorkflowError
from comfy_nb.workflows import TEMPLATES, Workflow, load_template


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_validates_against_real_object_info(name: str, filled_info: dict[str, Any]) -> None:
    load_template(name).validate(filled_info)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_titles_name_roles(name: str) -> None:
    wf = load_template(name)
    assert all(node.title for node in wf)
    if name == "txt2img_flux":  # Flux takes no negative prompt: the official template zeroes the positive one
        assert wf.node(title="Positive").class_type == "CLIPTextEncode"
        assert wf.node(title="Negative").class_type == "ConditioningZeroOut"
    elif name != "upscale":
        assert (
            wf.node(title="Positive").class_type == wf.node(title="Negative").class_type == "CLIPTextEncode"
        )


def test_empty_model_lists_fail_like_the_server(object_info: dict[str, Any]) -> None:
    with pytest.raises(PromptValidationError) as err:
        load_template("txt2img").validate(object_info)
    assert err.value.error_type == "prompt_outputs_failed_validation"
    assert "ckpt_name: 'v1-5-pruned-emaonly-fp16.safetensors' not in []" in str(err.value)


def test_full_binding_on_txt2img(filled_info: dict[str, Any]) -> None:
    wf = load_template("txt2img")
    wf.set_prompt("a red fox", negative="blurry")
    wf.set_seed(42)
    wf.set_size(768, 512)
    wf.set_sampler("euler", scheduler="karras", steps=25, cfg=6.5)
    wf.set_checkpoint("sd15.safetensors")
    vae = wf.set_vae("vae-ft-mse.safetensors")
    lora = wf.add_lora("detail.safetensors", strength_model=0.8, strength_clip=0.7)
    wf.validate(filled_info)
    sampler = wf.node("KSampler")
    assert wf.node(title="Positive").inputs["text"] == "a red fox"
    assert wf.node(title="Negative").inputs["text"] == "blurry"
    assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (42, 25, 6.5)
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("euler", "karras")
    assert wf.node("EmptyLatentImage").inputs == {"width": 768, "height": 512, "batch_size": 1}
    assert wf.node("VAEDecode")["vae"] == [vae.id, 0]
    assert sampler["model"] == [lora.id, 0]
    assert wf.node(title="Positive")["clip"] == wf.node(title="Negative")["clip"] == [lora.id, 1]
    assert lora.inputs["model"] == ["1", 0] and lora.inputs["clip"] == ["1", 1]


def test_loras_chain_in_order(filled_info: dict[str, Any]) -> None:
    wf = load_template("hires_fix")
    first = wf.add_lora("detail.safetensors", 0.5, 0.5)
    second = wf.add_lora("style.safetensors", 1.0, 0.2)
    assert second.inputs["model"] == [first.id, 0] and second.inputs["clip"] == [first.id, 1]
    assert {s.inputs["model"][0] for s in wf.samplers()} == {second.id}
    wf.validate(filled_info)


def test_lora_without_clip_users_is_model_only(filled_info: dict[str, Any]) -> None:
    wf = Workflow(
        {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
            "2": {"class_type": "VideoLinearCFGGuidance", "inputs": {"model": ["1", 0], "min_cfg": 1.0}},
        }
    )
    assert wf.add_lora("detail.safetensors").class_type == "LoraLoaderModelOnly"
    assert wf["2"]["model"] == ["3", 0]


def test_hires_fix_binds_both_samplers_and_the_first_latent() -> None:
    wf = load_template("hires_fix")
    wf.set_seed(7)
    wf.set_size(640, 448)
    assert [s["seed"] for s in wf.samplers()] == [7, 7]
    assert wf.node("EmptyLatentImage")["width"] == 640


def test_img2img_size_is_the_resize_node() -> None:
    wf = load_template("img2img")
    wf.set_size(320, 256)
    assert wf.node("ImageScale")["width"] == 320 and wf.node("ImageScale")["height"] == 256


def test_inpaint_prompt_through_conditioning_node() -> None:
    """The sampler gets its conditioning from InpaintModelConditioning, which gets it from the encoders."""
    wf = load_template("inpaint")
    sampler = wf.node("KSampler")
    imc = wf.node("InpaintModelConditioning")
    assert sampler["positive"] == imc.output(0) and sampler["latent_image"] == imc.output(2)
    wf.set_prompt("fox", negative="dog")
    assert wf["2"]["text"] == "fox" and wf["3"]["text"] == "dog"
    wf.set_size(256, 256)  # the size search goes through the conditioning node's pixels
    assert wf.node("ImageScale")["width"] == 256


def test_inpaint_mask_from_alpha(filled_info: dict[str, Any]) -> None:
    """Without a mask image the mask is the picture's alpha: LoadImage's MASK output, as the official templates."""
    wf = load_template("inpaint")
    wf.set_mask_from_alpha()
    assert not wf.nodes("LoadImageMask")
    assert wf.node("InpaintModelConditioning")["mask"] == [wf.node("LoadImage").id, 1]
    wf.validate(filled_info)


def test_capture_default_template_binding(capture: Callable[[str], Any], filled_info: dict[str, Any]) -> None:
    wf = Workflow.from_ui(capture("workflow_ui_template_default.json"), filled_info)
    wf.set_prompt("a lighthouse", negative="fog")
    wf.set_seed(1)
    wf.set_size(512, 768)
    assert wf["6"]["text"] == "a lighthouse" and wf["7"]["text"] == "fog"
    assert wf["5"]["height"] == 768 and wf["3"]["seed"] == 1
    wf.validate(filled_info)
    assert wf.parameters()["prompt"] == "a lighthouse"


def test_ambiguous_prompt_lists_candidates() -> None:
    wf = load_template("txt2img")
    extra = wf.add_node("CLIPTextEncode", {"text": "more", "clip": ["1", 1]}, title="Extra")
    combine = wf.add_node(
        "ConditioningCombine", {"conditioning_1": ["2", 0], "conditioning_2": extra.output(0)}
    )
    wf.node("KSampler")["positive"] = combine.output(0)
    with pytest.raises(WorkflowError) as err:
        wf.set_prompt("x")
    message = str(err.value)
    assert "ambiguous positive prompt" in message
    assert '2 CLIPTextEncode "Positive"' in message and f'{extra.id} CLIPTextEncode "Extra"' in message
    assert 'wf.set_prompt(..., node="2")' in message
    wf.set_prompt("x", node=extra.id)
    assert extra["text"] == "x"


def test_shared_encoder_is_refused() -> None:
    wf = load_template("txt2img")
    wf.node("KSampler")["negative"] = ["2", 0]
    with pytest.raises(WorkflowError, match="feeds both the positive and the negative"):
        wf.set_prompt("x")


def test_zeroed_negative_is_not_the_prompt() -> None:
    wf = load_template("txt2img")
    zero = wf.add_node("ConditioningZeroOut", {"conditioning": ["2", 0]})
    wf.node("KSampler")["negative"] = zero.output(0)
    wf.set_prompt("only positive")
    with pytest.raises(WorkflowError, match="no text encoder feeds the samplers' negative"):
        wf.set_prompt(negative="x")


def test_missing_targets_are_explained() -> None:
    wf = load_template("upscale")
    with pytest.raises(WorkflowError, match="no sampler"):
        wf.set_seed(1)
    with pytest.raises(WorkflowError, match="no checkpoint loader in this workflow; nodes: 1 LoadImage"):
        wf.set_checkpoint("x")


def test_linked_value_is_set_at_its_source() -> None:
    wf = load_template("txt2img")
    seed = wf.add_node("PrimitiveInt", {"value": 3})
    wf.node("KSampler")["seed"] = seed.output(0)
    wf.set_seed(99)
    assert seed["value"] == 99 and wf.node("KSampler")["seed"] == [seed.id, 0]


def test_node_lookup_and_paths() -> None:
    wf = load_template("hires_fix")
    assert wf["5"] == wf.node("5") == wf.node(title="Sampler")
    assert wf.node("KSampler", title="Hires sampler").id == "7"
    with pytest.raises(WorkflowError, match="ambiguous: 2 candidates for the class KSampler"):
        wf.node("KSampler")
    wf.set("7.denoise", 0.4)
    wf.set("Hires sampler.steps", 12)
    assert wf.get("7.denoise") == 0.4 and wf["7"]["steps"] == 12
    with pytest.raises(WorkflowError, match=r"not '<node id>\.<input>'"):
        wf.set("seed", 1)
    with pytest.raises(WorkflowError, match="no node '99'"):
        wf["99"]


def test_to_api_is_a_deep_copy_and_copy_is_independent() -> None:
    wf = load_template("txt2img")
    api = wf.to_api()
    api["5"]["inputs"]["seed"] = 123
    clone = wf.copy()
    clone.set_seed(5)
    assert wf.node("KSampler")["seed"] == 0
    json.dumps(wf.to_api())


def test_save_load_round_trip(tmp_path: Path) -> None:
    wf = load_template("video")
    wf.set_frames(13)
    wf.set_fps(8.0)
    again = Workflow.load(wf.save(tmp_path / "video.json"))
    assert again.to_api() == wf.to_api()
    assert again.node("EmptyHunyuanLatentVideo")["length"] == 13


def test_from_png_reads_prompt_then_workflow(
    tmp_path: Path, capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    wf = load_template("txt2img")
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(wf.to_api()))
    info.add_text("workflow", json.dumps(capture("workflow_ui_example.json")))
    Image.new("RGB", (8, 8)).save(tmp_path / "out.png", pnginfo=info)
    assert Workflow.from_png(tmp_path / "out.png").to_api() == wf.to_api()

    only_ui = PngImagePlugin.PngInfo()
    only_ui.add_text("workflow", json.dumps(capture("workflow_ui_example.json")))
    Image.new("RGB", (8, 8)).save(tmp_path / "ui.png", pnginfo=only_ui)
    with pytest.raises(WorkflowError, match="pass object_info"):
        Workflow.from_png(tmp_path / "ui.png")
    converted = Workflow.from_png(tmp_path / "ui.png", object_info)
    assert converted.to_api() == capture("workflow_ui_example.frontend_api.json")

    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(WorkflowError, match="no ComfyUI"):
        Workflow.from_png(tmp_path / "plain.png")


def test_validate_reports_server_wording(filled_info: dict[str, Any]) -> None:
    wf = load_template("txt2img")
    wf.set("5.steps", 0)
    wf.set("5.sampler_name", "bogus")
    with pytest.raises(PromptValidationError) as err:
        wf.validate(filled_info)
    types = {e.type for e in err.value.errors}
    assert types == {"value_smaller_than_min", "value_not_in_list"}
    assert all(e.node_id == "5" and e.title == "Sampler" for e in err.value.errors)


def test_validate_refuses_partial_graphs(filled_info: dict[str, Any]) -> None:
    wf = load_template("txt2img")
    wf.add_node("SaveImage", {"images": ["6", 0], "filename_prefix": 5}, title="Second")
    bad = wf.add_node("ImageScaleBy", {"image": ["6", 0], "upscale_method": "bogus", "scale_by": 1.0})
    wf.add_node("PreviewImage", {"images": bad.output(0)})
    with pytest.raises(PromptValidationError, match="drop"):
        wf.validate(filled_info)
