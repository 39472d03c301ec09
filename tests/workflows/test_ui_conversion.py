"""UI → API conversion equals the real frontend's output, and fails with the node's name otherwise."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from comfy_nb.errors import WorkflowError
from comfy_nb.protocol import parse_node_defs, validate_prompt
from comfy_nb.workflows import Workflow, ui_to_api

CAPTURES = ["workflow_ui_example", "workflow_ui_example_features", "workflow_ui_template_default"]


@pytest.mark.parametrize("name", CAPTURES)
def test_matches_frontend_exactly(
    name: str, capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    expected = capture(f"{name}.frontend_api.json")
    converted = ui_to_api(capture(f"{name}.json"), parse_node_defs(object_info))
    assert converted == expected
    assert json.dumps(converted) == json.dumps(expected)  # same key order too


@pytest.mark.parametrize("name", CAPTURES)
def test_workflow_accepts_raw_or_parsed_object_info(
    name: str, capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    ui = capture(f"{name}.json")
    raw = Workflow.from_ui(ui, object_info).to_api()
    assert raw == Workflow.from_ui(ui, parse_node_defs(object_info)).to_api()


def test_reserialized_ui_converts_the_same(
    capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    """The frontend dropped the "Image Blur" title on re-saving (its own locale names the class so, and
    object_info has no display name for ImageBlur); the converter titles it from the same locale name."""
    ui = capture("workflow_ui_example.frontend_reserialized.json")
    converted = Workflow.from_ui(ui, object_info).to_api()
    assert converted == capture("workflow_ui_example.frontend_api.json")


def test_modelfree_capture_converts_to_a_valid_prompt(
    capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    prompt = ui_to_api(capture("workflow_ui_example_features.json"), parse_node_defs(object_info))
    assert validate_prompt(prompt, object_info).ok


def _features(capture: Callable[[str], Any]) -> dict[str, Any]:
    ui: dict[str, Any] = copy.deepcopy(capture("workflow_ui_example_features.json"))
    return ui


def _node(ui: dict[str, Any], node_id: int) -> dict[str, Any]:
    node: dict[str, Any] = next(n for n in ui["nodes"] if n["id"] == node_id)
    return node


def test_unknown_class_names_the_node(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    ui = _features(capture)
    _node(ui, 2).update(type="FancyCustomNoise", title="My noise")
    with pytest.raises(WorkflowError) as err:
        Workflow.from_ui(ui, object_info)
    text = str(err.value)
    assert 'node 2 (FancyCustomNoise, "My noise")' in text and "custom node" in text


def test_muted_unknown_node_is_fine(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    ui = _features(capture)
    _node(ui, 6).update(type="NotInstalled")  # node 6 is muted in the capture
    assert "6" not in Workflow.from_ui(ui, object_info)


def test_surplus_widget_values_are_dropped_as_the_frontend_drops_them(
    capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    """Real saves carry them (an API node's result text, an old LoadImage's third value)."""
    ui = _features(capture)
    _node(ui, 5)["widgets_values"] = ["a", "b"]
    assert Workflow.from_ui(ui, object_info).to_api()["5"]["inputs"]["filename_prefix"] == "a"


def test_legacy_group_node_is_refused(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    ui = _features(capture)
    _node(ui, 2)["type"] = "workflow>noise"
    with pytest.raises(WorkflowError, match=r"legacy group node.*subgraph"):
        Workflow.from_ui(ui, object_info)


def test_link_to_muted_node_is_deleted(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    ui = _features(capture)
    _node(ui, 2)["mode"] = 2  # mute ImageAddNoise: SaveImage loses its image (via reroute and bypass)
    prompt = ui_to_api(ui, parse_node_defs(object_info))
    assert "images" not in prompt["5"]["inputs"]
    body = validate_prompt(prompt, object_info).error_body
    assert body and body["node_errors"]["5"]["errors"][0]["type"] == "required_input_missing"


def test_widget_values_by_name_and_missing_defaults(
    capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    ui = _features(capture)
    _node(ui, 2)["widgets_values"] = {"seed": 5, "strength": 0.25}
    _node(ui, 5)["widgets_values"] = []
    prompt = ui_to_api(ui, parse_node_defs(object_info))
    assert prompt["2"]["inputs"]["seed"] == 5 and prompt["2"]["inputs"]["strength"] == 0.25
    assert prompt["5"]["inputs"]["filename_prefix"] == "ComfyUI"


def test_load_image_upload_slot(object_info: dict[str, Any]) -> None:
    ui = {
        "nodes": [
            {
                "id": 1,
                "type": "LoadImage",
                "mode": 0,
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "widgets_values": ["cat.png", "image"],
            },
            {
                "id": 2,
                "type": "PreviewImage",
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    }
    assert Workflow.from_ui(ui, object_info).to_api() == {
        "1": {"inputs": {"image": "cat.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"}},
        "2": {
            "inputs": {"images": ["1", 0]},
            "class_type": "PreviewImage",
            "_meta": {"title": "Preview Image"},
        },
    }


def _subgraph_ui() -> dict[str, Any]:
    """EmptyImage → [subgraph: ImageInvert → ImageBlur(radius promoted)] → SaveImage, new-style links."""
    sub_id = "8f0c2c7e-1111-4222-8333-444455556666"
    return {
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "mode": 0,
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "widgets_values": [64, 64, 1, 0],
            },
            {
                "id": 9,
                "type": sub_id,
                "mode": 0,
                "inputs": [
                    {"name": "image", "type": "IMAGE", "link": 1},
                    {"name": "blur_radius", "type": "INT", "link": None, "widget": {"name": "blur_radius"}},
                ],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}],
                "widgets_values": [7],
            },
            {
                "id": 3,
                "type": "SaveImage",
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
                "widgets_values": ["sub"],
            },
        ],
        "links": [
            {"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 9, "target_slot": 0, "type": "IMAGE"},
            {"id": 2, "origin_id": 9, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
        ],
        "definitions": {
            "subgraphs": [
                {
                    "id": sub_id,
                    "name": "invert and blur",
                    "inputs": [
                        {"name": "image", "type": "IMAGE", "linkIds": [11]},
                        {"name": "blur_radius", "type": "INT", "linkIds": [13]},
                    ],
                    "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [14]}],
                    "nodes": [
                        {
                            "id": 1,
                            "type": "ImageInvert",
                            "mode": 0,
                            "inputs": [{"name": "image", "type": "IMAGE", "link": 11}],
                            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [12]}],
                        },
                        {
                            "id": 2,
                            "type": "ImageBlur",
                            "mode": 0,
                            "inputs": [
                                {"name": "image", "type": "IMAGE", "link": 12},
                                {
                                    "name": "blur_radius",
                                    "type": "INT",
                                    "link": 13,
                                    "widget": {"name": "blur_radius"},
                                },
                            ],
                            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [14]}],
                            "widgets_values": [3, 1.5],
                        },
                    ],
                    "links": [
                        {
                            "id": 11,
                            "origin_id": -10,
                            "origin_slot": 0,
                            "target_id": 1,
                            "target_slot": 0,
                            "type": "IMAGE",
                        },
                        {
                            "id": 12,
                            "origin_id": 1,
                            "origin_slot": 0,
                            "target_id": 2,
                            "target_slot": 0,
                            "type": "IMAGE",
                        },
                        {
                            "id": 13,
                            "origin_id": -10,
                            "origin_slot": 1,
                            "target_id": 2,
                            "target_slot": 1,
                            "type": "INT",
                        },
                        {
                            "id": 14,
                            "origin_id": 2,
                            "origin_slot": 0,
                            "target_id": -20,
                            "target_slot": 0,
                            "type": "IMAGE",
                        },
                    ],
                }
            ]
        },
    }


def test_subgraph_is_flattened(object_info: dict[str, Any]) -> None:
    prompt = Workflow.from_ui(_subgraph_ui(), object_info).to_api()
    assert sorted(prompt) == ["1", "3", "9:1", "9:2"]
    assert prompt["9:1"]["inputs"] == {"image": ["1", 0]}
    assert prompt["9:2"]["inputs"] == {"blur_radius": 7, "sigma": 1.5, "image": ["9:1", 0]}
    assert prompt["3"]["inputs"]["images"] == ["9:2", 0]
    assert validate_prompt(prompt, object_info).ok


def test_load_detects_ui_format(
    tmp_path: Path, capture: Callable[[str], Any], object_info: dict[str, Any]
) -> None:
    path = tmp_path / "ui.json"
    path.write_text(json.dumps(capture("workflow_ui_example.json")))
    with pytest.raises(WorkflowError, match=r"UI-format workflow.*object_info"):
        Workflow.load(path)
    assert Workflow.load(path, object_info).to_api() == capture("workflow_ui_example.frontend_api.json")
