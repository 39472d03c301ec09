"""GenerationTask validation and prompt building; ComfyConfig validation and persistence."""

from __future__ import annotations

# mypy: disable-error-code="unreachable, comparison-overlap"
# (mypy keeps a property narrowed across calls that change it: job.status after an await, th.pending after a push)
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from comfy_nb.config import ComfyConfig, LoraSpec
from comfy_nb.errors import ConfigError, WorkflowError
from comfy_nb.protocol import parse_node_defs, validate_prompt
from comfy_nb.workflows import GenerationTask

CONFIG = ComfyConfig(server_url="http://127.0.0.1:8188")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"width": 100, "height": 512}, "width must be a multiple of 8"),
        ({"width": 512}, "give both width and height"),
        ({"width": 16, "height": 16}, "in 64..8192"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"cfg_scale": 150.0}, "cfg_scale must be a number in 0..100"),
        ({"seed": -1}, "seed must be an integer"),
        ({"type": "music"}, "type 'music' is not one of"),
        ({"prompt": "  "}, "the image task needs a prompt"),
        ({"type": "inpaint"}, "needs init_image"),
        ({"type": "upscale"}, "needs init_image"),
        ({"denoise": 1.5}, "denoise must be in 0..1"),
    ],
)
def test_task_field_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        GenerationTask(**{"prompt": "fox", **fields})


def test_seed_is_drawn_and_recorded(filled_info: dict[str, Any]) -> None:
    task = GenerationTask(prompt="fox")
    assert 0 <= task.resolved_seed < 2**32
    prompt, meta = task.to_prompt(CONFIG, filled_info)
    assert prompt["5"]["inputs"]["seed"] == task.resolved_seed == meta["seed"]
    assert GenerationTask(prompt="fox", seed=2**64 - 1).resolved_seed == 2**64 - 1


def test_server_lists_and_ranges(filled_info: dict[str, Any]) -> None:
    with pytest.raises(WorkflowError, match="sampler 'bogus' is not one of the server's: euler, "):
        GenerationTask(prompt="fox", sampler="bogus").to_prompt(CONFIG, filled_info)
    with pytest.raises(WorkflowError, match="scheduler 'soon'"):
        GenerationTask(prompt="fox", scheduler="soon").to_prompt(CONFIG, parse_node_defs(filled_info))


def test_full_task_builds_the_contract_meta(filled_info: dict[str, Any]) -> None:
    config = ComfyConfig(
        server_url="http://127.0.0.1:8188",
        checkpoint="sd15.safetensors",
        vae="vae-ft-mse.safetensors",
        loras=[("style.safetensors", 0.5)],
    )
    task = GenerationTask(
        type="image",
        prompt="a red fox",
        negative_prompt="blurry",
        width=768,
        height=512,
        seed=None,
        steps=25,
        cfg_scale=6.5,
        sampler="euler",
        scheduler="karras",
        loras=[("detail.safetensors", 0.8)],
        batch_size=1,
    )
    prompt, meta = task.to_prompt(config, filled_info)
    assert validate_prompt(prompt, filled_info, strict_combos=True).ok
    assert meta == {
        "type": "image",
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "seed": task.resolved_seed,
        "sampler": "euler",
        "scheduler": "karras",
        "steps": 25,
        "cfg": 6.5,
        "model": "sd15.safetensors",
        "width": 768,
        "height": 512,
        "batch_size": 1,
        "denoise": 1.0,
    }
    loras = [n["inputs"]["lora_name"] for n in prompt.values() if n["class_type"] == "LoraLoader"]
    assert loras == ["detail.safetensors"]  # the task's LoRAs replace the config's
    assert any(n["class_type"] == "VAELoader" for n in prompt.values())


@pytest.mark.parametrize(
    ("task", "template_class"),
    [
        (GenerationTask(prompt="fox", init_image="example.png", denoise=0.6), "VAEEncode"),
        (
            GenerationTask(type="inpaint", prompt="fox", init_image="example.png", mask="example.png"),
            "LoadImageMask",
        ),
        (GenerationTask(type="upscale", init_image="example.png", scale_by=0.5), "ImageUpscaleWithModel"),
        (GenerationTask(type="video", prompt="fox", frames=13, fps=8.0), "SaveAnimatedWEBP"),
        (GenerationTask(type="grid", prompt="fox", batch_size=6), "EmptyLatentImage"),
    ],
)
def test_each_type_uses_its_workflow(
    task: GenerationTask, template_class: str, filled_info: dict[str, Any]
) -> None:
    prompt, meta = task.to_prompt(CONFIG, filled_info)
    assert template_class in {n["class_type"] for n in prompt.values()}
    assert meta["type"] == task.type
    if task.type == "grid":
        assert meta["batch_size"] == 6


def test_refuses_unconfigured_or_missing_workflow(filled_info: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="not configured"):
        GenerationTask(prompt="fox").to_prompt(ComfyConfig(), filled_info)
    config = ComfyConfig(server_url="http://x", workflows={"image": "txt2img"})
    with pytest.raises(
        ConfigError, match=r"no workflow set for task type 'video'.*config.workflows\['video'\]"
    ):
        GenerationTask(type="video", prompt="fox").to_prompt(config)
    config.workflows = {"image": "/nonexistent/flow.json"}
    with pytest.raises(ConfigError, match="neither a template"):
        GenerationTask(prompt="fox").to_prompt(config)


def test_workflow_file_in_ui_format(
    tmp_path: Path, capture: Callable[[str], Any], filled_info: dict[str, Any]
) -> None:
    path = tmp_path / "default.json"
    path.write_text(json.dumps(capture("workflow_ui_template_default.json")))
    config = ComfyConfig(server_url="http://x", workflows={"image": str(path)})
    prompt, meta = GenerationTask(prompt="lighthouse", seed=3).to_prompt(config, filled_info)
    assert prompt["6"]["inputs"]["text"] == "lighthouse" and prompt["3"]["inputs"]["seed"] == 3
    assert meta["model"] == "v1-5-pruned-emaonly-fp16.safetensors"


def test_init_image_must_be_a_server_name(filled_info: dict[str, Any]) -> None:
    task = GenerationTask(type="upscale", init_image=Path("local.png"))
    with pytest.raises(WorkflowError, match="upload it first"):
        task.to_prompt(CONFIG, filled_info)


# -- ComfyConfig -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFY_URL", raising=False)
    monkeypatch.delenv("COMFY_TOKEN", raising=False)


def test_config_round_trip(tmp_path: Path) -> None:
    config = ComfyConfig(
        server_url="https://comfy.example.org:8443/",
        username="ada",
        password="hunter2",
        token="tok",
        headers={"X-Api-Key": "k"},
        timeout=12.5,
        max_retries=5,
        workflows={"image": "hires_fix", "video": str(tmp_path / "v.json")},
        checkpoint="sd15.safetensors",
        vae="vae.safetensors",
        loras=[LoraSpec(name="a.safetensors", strength_model=0.3, strength_clip=0.9), ("b.safetensors", 0.5)],
    )
    path = config.save(tmp_path / "cfg" / "config.json", reveal_secrets=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ComfyConfig.load(path) == config
    assert config.server_url == "https://comfy.example.org:8443"
    plain = ComfyConfig(server_url="http://a:1", checkpoint="x")
    assert ComfyConfig.load(plain.save(tmp_path / "plain.json")) == plain


def test_files_from_earlier_versions_still_load(tmp_path: Path) -> None:
    """``connect_timeout`` and ``retry_backoff`` were saved but never used; old files load without them."""
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"server_url": "http://a:1", "connect_timeout": 10.0, "retry_backoff": 0.5}))
    assert ComfyConfig.load(old) == ComfyConfig(server_url="http://a:1")
    with pytest.raises(ConfigError, match="connect_timeout"):
        ComfyConfig(server_url="http://a:1", connect_timeout=5)  # not a setting any more: said, not ignored


def test_secrets_stay_out_of_reprs_and_files(tmp_path: Path) -> None:
    config = ComfyConfig(
        server_url="http://a",
        token="s3cret-token",
        password="pw-s3cret",
        username="u",
        headers={"X-Key": "hdr-s3cret"},
    )
    for text in (
        repr(config),
        str(config),
        json.dumps(config.model_dump(mode="json")),
        (config.save(tmp_path / "c.json")).read_text(),
    ):
        assert "s3cret" not in text
    assert config.token is not None and config.token.get_secret_value() == "s3cret-token"
    assert "s3cret" in config.save(tmp_path / "r.json", reveal_secrets=True).read_text()


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ComfyConfig(server_url="http://file:1").save(tmp_path / "c.json")
    monkeypatch.setenv("COMFY_URL", "http://env:2")
    monkeypatch.setenv("COMFY_TOKEN", "envtoken")
    config = ComfyConfig.load(path)
    assert config.server_url == "http://env:2" and config.token is not None
    assert config.token.get_secret_value() == "envtoken"


def test_default_path_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("comfy_nb.config.default_config_path", lambda: tmp_path / "nested" / "config.json")
    config = ComfyConfig.load()
    assert not config.is_configured
    config.server_url = "http://127.0.0.1:8188"
    assert config.is_configured
    config.save()
    assert ComfyConfig.load() == config


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"server_url": "ftp://x"}', "server_url: must start with http:// or https://"),
        ('{"timeout": "soon"}', "timeout: "),
        ('{"loras": [{"name": "a", "strength": 1}]}', "loras.0.strength"),
        ('{"sever_url": "http://x"}', "sever_url: Extra inputs are not permitted"),
        ('{"workflows": {"imgae": "txt2img"}}', "unknown task type"),
        ("[1]", "must hold a JSON object"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        ComfyConfig.load(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_assignment_is_validated() -> None:
    config = ComfyConfig()
    for bad in ("localhost:8188", "http://", "http://host:notaport"):
        with pytest.raises(ConfigError, match="server_url"):
            config.server_url = bad
