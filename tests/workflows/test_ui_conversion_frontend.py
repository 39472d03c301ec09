"""UI → API conversion against the real frontend 1.27.10, construct by construct.

Each ``ui_fixtures/NAME.json`` is a hand-built save (``ui_fixtures/_build.py``) and
``NAME.frontend_api.json`` is what the real frontend's ``graphToPrompt`` made of it, run headless with
``Math.random`` and the clock fixed by the save's ``_harness`` entry (``ui_fixtures/README.md``).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from comfy_nb.errors import WorkflowError
from comfy_nb.protocol import NodeDef, parse_node_defs
from comfy_nb.workflows import Workflow, ui_to_api
from comfy_nb.workflows._ui_graph import (
    BROWSER_STATE_TYPES,
    UiSlot,
    default_title,
    frontend_input_order,
    widgets_for,
)

HERE = Path(__file__).parent / "ui_fixtures"
CONSTRUCTS = sorted(p.name.removesuffix(".frontend_api.json") for p in HERE.glob("*.frontend_api.json"))


class Draws:
    """Stands in for ``Math.random``: hands out a fixed sequence and counts what was taken."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.taken = 0

    def random(self) -> float:
        if self.taken >= len(self.values):
            raise AssertionError("more random draws than the real frontend made")
        self.taken += 1
        return self.values[self.taken - 1]


def _load(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    data: dict[str, Any] = json.loads((HERE / f"{name}.json").read_text())
    harness = data.pop("_harness", {})
    return data, harness


@pytest.fixture(scope="module")
def defs(object_info: dict[str, Any]) -> dict[str, NodeDef]:
    """The captured classes, plus audio classes the capturing server lacked (``extra_object_info.json``,
    written from ComfyUI 0.3.64's ``comfy_extras/nodes_audio.py``), which the frontend runs were given too."""
    extra = json.loads((HERE / "extra_object_info.json").read_text())
    return parse_node_defs({**object_info, **extra})


def test_every_construct_has_a_frontend_capture() -> None:
    assert set(CONSTRUCTS) >= {
        "subgraph_promoted",
        "nested_subgraph",
        "nested_subgraph_outer_first",
        "promoted_widget_kinds",
        "dynamic_prompts",
        "filename_tokens",
        "muted_and_bypassed",
        "subgraph_modes",
        "primitives_and_reroutes",
        "widgets_and_controls",
        "bypass_types",
        "dynamic_prompt_edges",
        "subgraph_primitive_and_tokens",
        "subgraph_short_instance",
        "audio_nodes",
    }


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_matches_the_real_frontend(name: str, defs: dict[str, NodeDef]) -> None:
    ui, harness = _load(name)
    draws = Draws(harness.get("random", []))
    now = datetime(*harness["now"]) if "now" in harness else None
    converted = ui_to_api(ui, defs, rng=draws, now=now)
    expected = json.loads((HERE / f"{name}.frontend_api.json").read_text())
    assert converted == expected
    assert json.dumps(converted) == json.dumps(expected)  # same key order, same number spelling
    assert draws.taken == harness.get("draws", 0)  # the same choices drawn in the same order


def test_promoted_value_wins_and_a_link_wins_over_it(defs: dict[str, NodeDef]) -> None:
    ui, _ = _load("subgraph_promoted")
    prompt = ui_to_api(ui, defs)
    assert prompt["5:2"]["inputs"]["blur_radius"] == 7  # the instance's value, not the inner 3
    assert prompt["6:2"]["inputs"]["blur_radius"] == ["2", 0]  # linked from outside
    assert prompt["8:2"]["inputs"]["blur_radius"] == 3  # no saved values: the inner node's


def test_nested_ids_and_values(defs: dict[str, NodeDef]) -> None:
    ui, _ = _load("nested_subgraph")
    prompt = ui_to_api(ui, defs)
    assert sorted(prompt) == ["1", "10:3", "10:4:1", "10:4:2", "2"]
    assert prompt["10:4:2"]["inputs"]["blur_radius"] == 13  # outer instance → inner instance → node
    assert prompt["10:4:2"]["inputs"]["sigma"] == 0.75  # the inner instance's own promoted value


def test_dynamic_prompt_seed_is_reproducible(defs: dict[str, NodeDef]) -> None:
    ui, _ = _load("dynamic_prompts")
    texts = {ui_to_api(ui, defs, rng=seed)["1"]["inputs"]["text"] for seed in range(40)}
    assert len(texts) > 1  # the choice really varies with the seed
    assert ui_to_api(ui, defs, rng=7) == ui_to_api(ui, defs, rng=random.Random(7))
    for text in texts:
        assert "//" not in text and "/*" not in text and "{literal}" in text and "| bar" in text


def test_workflow_passes_rng_and_clock(tmp_path: Path, object_info: dict[str, Any]) -> None:
    ui, _ = _load("filename_tokens")
    when = datetime(2024, 2, 29, 13, 7, 9)
    prefix = Workflow.from_ui(ui, object_info, now=when).to_api()["4"]["inputs"]["filename_prefix"]
    # %date:yy.M.d% splits on "." into three parts, and the frontend formats only the first ("yy").
    assert prefix == (
        "2024-02-29/640x480_1_a_b_c_d__e_f_g__13-07-09_24_29_%Nobody.width%_%EmptyImage.nope%_%width%_yyy"
    )
    path = tmp_path / "dyn.json"
    path.write_text(json.dumps(_load("dynamic_prompts")[0]))
    assert (
        Workflow.load(path, object_info, rng=3).to_api() == Workflow.load(path, object_info, rng=3).to_api()
    )


def test_muted_source_deletes_the_widget_input_too(defs: dict[str, NodeDef]) -> None:
    ui, _ = _load("muted_and_bypassed")
    inputs = ui_to_api(ui, defs)["7"]["inputs"]
    assert "x" not in inputs and "source" not in inputs  # fed by muted nodes
    assert inputs["destination"] == ["5", 0] and inputs["y"] == 0


@pytest.mark.parametrize(
    ("name", "match"),
    [
        (
            "refused_passthrough_output",
            r"node 2 \(.*\): subgraph output 0 is wired straight from a subgraph input",
        ),
        ("refused_chained_reroute_instances", r"node 2:1 \(Reroute\): links loop back"),
        ("refused_primitive_in_subgraph", r"node 2:1 \(PrimitiveNode\) is a PrimitiveNode inside a subgraph"),
    ],
)
def test_what_the_frontend_cannot_convert_is_refused(name: str, match: str, defs: dict[str, NodeDef]) -> None:
    ui, _ = _load(name)
    with pytest.raises(WorkflowError, match=match):
        ui_to_api(ui, defs)


def _edit(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    ui = copy.deepcopy(_load(name)[0])
    change(ui)
    return ui


def test_unknown_class_inside_a_subgraph_names_the_execution_id(defs: dict[str, NodeDef]) -> None:
    def change(ui: dict[str, Any]) -> None:
        ui["definitions"]["subgraphs"][0]["nodes"][1].update(type="FancyBlur", title="My blur")

    with pytest.raises(WorkflowError, match=r'node 5:2 \(FancyBlur, "My blur"\): class .FancyBlur. is not'):
        ui_to_api(_edit("subgraph_promoted", change), defs)


def test_browser_state_nodes_are_refused(defs: dict[str, NodeDef]) -> None:
    def change(ui: dict[str, Any]) -> None:
        ui["nodes"].append(
            {"id": 50, "type": "WebcamCapture", "mode": 0, "inputs": [], "widgets_values": [640, 480, False]}
        )

    with pytest.raises(WorkflowError, match=r"node 50 \(WebcamCapture\): the frontend gives .* widgets"):
        ui_to_api(_edit("widgets_and_controls", change), defs)


def test_dangling_link_is_refused(defs: dict[str, NodeDef]) -> None:
    def change(ui: dict[str, Any]) -> None:
        ui["links"] = [link for link in ui["links"] if link[3] != 5]  # the one into PreviewImage

    with pytest.raises(WorkflowError, match=r"node 5 \(PreviewImage\): input 'images' uses link \d+, which"):
        ui_to_api(_edit("widgets_and_controls", change), defs)


def test_subgraph_that_contains_itself_is_refused(defs: dict[str, NodeDef]) -> None:
    def change(ui: dict[str, Any]) -> None:
        definition = ui["definitions"]["subgraphs"][0]
        definition["nodes"][0]["type"] = definition["id"]

    with pytest.raises(WorkflowError, match="contains itself"):
        ui_to_api(_edit("subgraph_promoted", change), defs)


LAYOUTS: dict[str, dict[str, Any]] = json.loads((HERE / "frontend_node_layouts.json").read_text())


def test_node_layouts_match_the_frontend_for_every_class(defs: dict[str, NodeDef]) -> None:
    """Per server class: the title, the input order and the widgets (with helpers) the frontend creates,
    as ``LiteGraph.createNode`` made them in 1.27.10 against the captured object_info."""
    assert set(defs) <= set(LAYOUTS) and "LoadAudio" in defs
    for name, node_def in defs.items():
        if name in BROWSER_STATE_TYPES:
            continue
        layout = LAYOUTS[name]
        assert default_title(node_def) == layout["title"], name
        widgets = [[w.name, w.sent, w.stored] for w in widgets_for(node_def)]
        assert widgets == layout["widgets"], name
        shuffled = [UiSlot(spec.name, spec.type) for spec in reversed(node_def.inputs.values())]
        shuffled = [s for s in shuffled if node_def.inputs[s.name].section != "hidden"]
        expected = [n for n in layout["inputs"] if n in node_def.inputs]  # not the upload buttons' slots
        assert [s.name for s in frontend_input_order(shuffled, node_def)] == expected, name
