"""Property tests: binding and conversion never produce a graph that fails validation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_nb.config import ComfyConfig
from comfy_nb.protocol import parse_node_defs, validate_prompt
from comfy_nb.workflows import GenerationTask, ui_to_api

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CONFIG = ComfyConfig(server_url="http://127.0.0.1:8188")
sizes = st.integers(8, 128).map(lambda n: n * 8)
text = st.text(min_size=1, max_size=40).filter(str.strip)


@st.composite
def tasks(draw: st.DrawFn, samplers: list[str], schedulers: list[str]) -> GenerationTask:
    kind = draw(st.sampled_from(["image", "img2img", "inpaint", "upscale", "video", "grid"]))
    common: dict[str, Any] = {
        "prompt": draw(text),
        "negative_prompt": draw(st.none() | text),
        "seed": draw(st.none() | st.integers(0, 2**64 - 1)),
        "steps": draw(st.none() | st.integers(1, 60)),
        "cfg_scale": draw(st.none() | st.floats(0, 30, allow_nan=False)),
        "sampler": draw(st.none() | st.sampled_from(samplers)),
        "scheduler": draw(st.none() | st.sampled_from(schedulers)),
        "loras": draw(
            st.none()
            | st.lists(
                st.tuples(
                    st.sampled_from(["detail.safetensors", "style.safetensors"]),
                    st.floats(-2, 2, allow_nan=False),
                ),
                max_size=3,
            )
        ),
        "vae": draw(st.none() | st.just("vae-ft-mse.safetensors")),
    }
    if draw(st.booleans()):
        common["width"], common["height"] = draw(sizes), draw(sizes)
    if kind == "upscale":
        return GenerationTask(type="upscale", init_image="example.png", scale_by=draw(st.floats(0.1, 4)))
    if kind == "img2img":
        return GenerationTask(type="image", init_image="example.png", denoise=draw(st.floats(0, 1)), **common)
    if kind == "inpaint":
        return GenerationTask(type="inpaint", init_image="example.png", mask="example.png", **common)
    if kind == "video":
        common["vae"] = draw(st.none() | st.just("wan_2.1_vae.safetensors"))
        return GenerationTask(
            type="video", frames=draw(st.integers(1, 64)), fps=draw(st.floats(1, 30)), **common
        )
    batch = draw(st.none() | st.integers(1, 8))
    return GenerationTask(type=kind, batch_size=batch, **common)  # type: ignore[arg-type]


def test_bound_tasks_always_validate(filled_info: dict[str, Any]) -> None:
    spec = filled_info["KSampler"]["input"]["required"]

    @SETTINGS
    @given(tasks(spec["sampler_name"][0], spec["scheduler"][0]))
    def check(task: GenerationTask) -> None:
        prompt, meta = task.to_prompt(CONFIG, filled_info)
        result = validate_prompt(prompt, filled_info, strict_combos=True)
        assert result.ok and not result.node_errors, result.node_errors
        if task.type != "upscale":
            assert meta["seed"] == task.resolved_seed

    check()


def test_virtual_nodes_never_change_the_conversion(
    capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    """Reroutes on random links, notes, groups and bypassed pass-through nodes leave the API graph as is."""
    defs = parse_node_defs(object_info)
    base = capture("workflow_ui_example.json")
    expected = ui_to_api(base, defs)

    @SETTINGS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        ui = copy.deepcopy(base)
        next_node, next_link = 100, 100
        for link in list(ui["links"]):
            for _ in range(data.draw(st.integers(0, 2))):
                # put a Reroute (or a bypassed ImageInvert) in the middle of this link
                kind = data.draw(st.sampled_from(["Reroute", "ImageInvert"]))
                mid = {
                    "id": next_node,
                    "type": kind,
                    "mode": 4 if kind == "ImageInvert" else 0,
                    "inputs": [
                        {"name": "image" if kind == "ImageInvert" else "", "type": "IMAGE", "link": next_link}
                    ],
                    "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [link[0]]}],
                }
                ui["nodes"].append(mid)
                ui["links"].append([next_link, link[1], link[2], next_node, 0, link[5]])
                link[1], link[2] = next_node, 0
                next_node, next_link = next_node + 1, next_link + 1
        for _ in range(data.draw(st.integers(0, 2))):
            ui["nodes"].append(
                {
                    "id": next_node,
                    "type": data.draw(st.sampled_from(["Note", "MarkdownNote"])),
                    "mode": 0,
                    "widgets_values": [data.draw(st.text(max_size=20))],
                }
            )
            next_node += 1
        ui["groups"].append({"id": 9, "title": "g", "bounding": [0, 0, 10, 10]})
        data.draw(st.randoms()).shuffle(ui["nodes"])
        converted = ui_to_api(ui, defs)
        assert converted == expected
        assert validate_prompt(converted, object_info).ok

    check()


def test_primitive_values_are_inlined(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    defs = parse_node_defs(object_info)
    base = capture("workflow_ui_example_features.json")

    @SETTINGS
    @given(st.integers(1, 16384), st.integers(1, 16384))
    def check(width: int, stale: int) -> None:
        ui = copy.deepcopy(base)
        for node in ui["nodes"]:
            if node["type"] == "PrimitiveNode":
                node["widgets_values"][0] = width
            if node["id"] == 1:
                node["widgets_values"][0] = stale  # the link wins over the stored widget value
        converted = ui_to_api(ui, defs)
        assert converted["1"]["inputs"]["width"] == width
        assert validate_prompt(converted, object_info).ok

    check()
