"""LoRA rows with both strengths, the empty negative prompt, and reprs that show only what was set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from comfy_nb.client import ComfyClient
from comfy_nb.config import ComfyConfig, LoraSpec
from comfy_nb.mock import MockServer
from comfy_nb.widgets import ConfigPanel, Gallery, TaskBuilder
from comfy_nb.widgets._forms import LoraStack, lora_triples
from comfy_nb.workflows import GenerationTask

from .conftest import wait_for

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def client() -> Iterator[ComfyClient]:
    with MockServer() as server:
        c = ComfyClient(server.url, config=ComfyConfig(server_url=server.url))
        yield c
        c.close()


def test_lora_rows_set_model_and_clip_strength() -> None:
    assert lora_triples([LoraSpec(name="a", strength_model=0.5, strength_clip=0.25), ("b", 0.8), "c"]) == [
        ("a", 0.5, 0.25), ("b", 0.8, 0.8), ("c", 1.0, 1.0)]
    stack = LoraStack(["a", "b"], [("a", 0.5, 0.25)])
    row = stack.children[0].children[0]  # the rows box, then its first row
    assert [c.description for c in row.children[1:3]] == ["model", "CLIP"]
    row.children[2].value = 0.75
    assert stack.value == [("a", 0.5, 0.75)]


def test_config_panel_keeps_clip_strength() -> None:
    config = ComfyConfig(loras=[("x.safetensors", 0.6, 0.3)])
    panel = ConfigPanel(config)
    assert panel.loras.value == [("x.safetensors", 0.6, 0.3)]
    panel.loras.children[0].children[0].children[2].value = 0.9  # first row's CLIP strength
    assert config.loras == [LoraSpec(name="x.safetensors", strength_model=0.6, strength_clip=0.9)]


def test_builder_task_has_both_strengths_and_runs(client: ComfyClient) -> None:
    tb = TaskBuilder(client)
    wait_for(lambda: tb.loras.names, TIMEOUT, "lora names")
    name = tb.loras.names[0]
    tb.loras.value = [(name, 0.7, 0.2)]
    tb.prompt.value = "a fox"
    tb.width.value, tb.height.value, tb.steps.value = 64, 64, 2
    task = tb.task
    assert task.loras == [(name, 0.7, 0.2)]
    graph, _meta = task.to_prompt(client.config, client.node_defs())
    loader = next(n for n in graph.values() if n["class_type"] == "LoraLoader")
    assert (loader["inputs"]["strength_model"], loader["inputs"]["strength_clip"]) == (0.7, 0.2)


def test_empty_negative_prompt_is_not_the_templates(client: ComfyClient) -> None:
    gallery = Gallery(client=client)
    tb = TaskBuilder(client, gallery=gallery)
    tb.prompt.value = "a fox"
    tb.width.value, tb.height.value, tb.steps.value = 64, 64, 2
    assert tb.negative.value == ""
    task = tb.task
    graph, _meta = task.to_prompt(client.config, client.node_defs())
    texts = sorted(n["inputs"]["text"] for n in graph.values() if n["class_type"] == "CLIPTextEncode")
    assert texts == ["", "a fox"], "what the box shows is what runs"
    [fut] = tb.queue()
    fut.result(TIMEOUT).wait(TIMEOUT)
    wait_for(lambda: gallery.total == 1, TIMEOUT, "gallery")
    gallery.enlarge(0)
    assert "negative_prompt" not in gallery.detail["params"]
    assert gallery.detail["params"]["cfg"] == 7.0


@pytest.mark.parametrize(("task", "text"), [
    (GenerationTask(prompt="a fox"), "GenerationTask(prompt='a fox')"),
    (GenerationTask(type="video", prompt="cat", frames=3, loras=[("a", 0.5, 0.7)]),
     "GenerationTask(type='video', prompt='cat', loras=[('a', 0.5, 0.7)], frames=3)"),
    (GenerationTask(prompt="x", seed=5, cfg_scale=4.5, negative_prompt=""),
     "GenerationTask(prompt='x', negative_prompt='', seed=5, cfg_scale=4.5)"),
])
def test_task_repr_shows_only_what_was_set(task: GenerationTask, text: str) -> None:
    assert repr(task) == text
    assert repr(GenerationTask(prompt="a fox")) == repr(GenerationTask(prompt="a fox")), "no drawn seed"


def test_config_repr_shows_only_what_differs_and_never_a_secret() -> None:
    assert repr(ComfyConfig()) == "ComfyConfig()"
    config = ComfyConfig(server_url="http://127.0.0.1:8188", token="s3cret-value", timeout=60.0,
                         headers={"X-Key": "hdr-secret"})
    text = repr(config)
    assert text == "ComfyConfig(server_url='http://127.0.0.1:8188', token=***, headers=***, timeout=60.0)"
    assert str(config) == text and "s3cret" not in text and "hdr-secret" not in text


def test_animated_output_gets_a_small_first_frame_poster(fake_client: Any) -> None:
    import io

    from PIL import Image

    from comfy_nb.client import JobState, Output
    from comfy_nb.widgets import JobView

    from .conftest import FakeJob

    frames = [Image.new("RGB", (400, 300), colour) for colour in ((200, 10, 10), (10, 200, 10), (10, 10, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    fake_client.files["clip_00001_.webp"] = buf.getvalue()
    out = Output(kind="animated", filename="clip_00001_.webp")
    gallery = Gallery([out], client=fake_client)
    job = FakeJob(fake_client)
    view = JobView(job)
    job.emit(state=JobState.COMPLETED, progress=100.0, outputs=(out,), started_at=1.0, finished_at=2.0)
    wait_for(lambda: view.outputs[0]["thumb"].startswith("data:image/jpeg"), TIMEOUT, "job view poster")
    wait_for(lambda: gallery.items and gallery.items[0]["thumb"].startswith("data:image/jpeg"), TIMEOUT, "poster")
    import base64

    poster = Image.open(io.BytesIO(base64.b64decode(view.outputs[0]["thumb"].split(",", 1)[1])))
    pixel = poster.convert("RGB").getpixel((10, 10))
    assert max(poster.size) <= 160 and isinstance(pixel, tuple) and pixel[0] > 150, "the first (red) frame, small"
