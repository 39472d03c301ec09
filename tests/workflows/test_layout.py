"""The layered layout and the UI-workflow boxes (pure Python, no widgets)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from comfy_nb.workflows import Workflow
from comfy_nb.workflows._layout import (
    Box,
    _crossings,
    _ordered_fit,
    _total_crossings,
    layered_layout,
    place_missing,
    ui_boxes,
)


def _random_dag(n: int, seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(n)]
    edges = []
    for i in range(1, n):
        for _ in range(rng.choice([1, 1, 2, 3])):
            edges.append((nodes[rng.randrange(max(0, i - 25), i)], nodes[i]))
    return nodes, edges


def _overlaps(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def test_chain_is_one_row_left_to_right() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c")])
    xs = [layout.boxes[v].x for v in "abc"]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert len({layout.boxes[v].y for v in "abc"}) == 1
    assert layout.bends == {}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_dag_links_go_right_and_boxes_never_overlap(seed: int) -> None:
    nodes, edges = _random_dag(120, seed)
    sizes = {v: (200.0, 60.0 + (i % 3) * 40) for i, v in enumerate(nodes)}
    layout = layered_layout(nodes, edges, sizes)
    boxes = layout.boxes
    assert set(boxes) == set(nodes)
    for src, dst in edges:
        assert boxes[src].x + boxes[src].w < boxes[dst].x, f"{src}->{dst} must point right"
    ordered = sorted(boxes.values(), key=lambda box: (box.x, box.y))
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:i + 40]:
            assert not _overlaps(first, second)
    # a long link bends through every column it crosses, beside the boxes there
    for (a, b), points in layout.bends.items():
        assert len(points) % 2 == 0 and points
        xs = [p[0] for p in points]
        assert xs == sorted(xs) and boxes[a].x < xs[0] and xs[-1] < boxes[b].x + boxes[b].w


def test_long_edge_bends_around_the_middle_column() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    (points,) = layout.bends.values()
    mid = layout.boxes["b"]
    y = points[0][1]
    assert not (mid.y <= y <= mid.y + mid.h), "the a->c link must not cross box b"


def test_sources_sit_next_to_their_consumer() -> None:
    """A loader used only by the last node is laid out just before it, not in the first column."""
    nodes = ["a", "b", "c", "d", "loader"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("loader", "d")]
    boxes = layered_layout(nodes, edges).boxes
    assert boxes["loader"].x == boxes["c"].x


def test_crossing_reduction_untangles_a_twisted_pair_of_layers() -> None:
    nodes = ["a1", "a2", "a3", "b3", "b2", "b1"]
    edges = [("a1", "b1"), ("a2", "b2"), ("a3", "b3")]
    boxes = layered_layout(nodes, edges).boxes
    order = sorted(["b1", "b2", "b3"], key=lambda v: boxes[v].y)
    assert order == ["b1", "b2", "b3"]


def test_crossing_count_and_reduction_on_a_random_graph() -> None:
    succ = [[3, 4], [3], [5], [], [], []]
    assert _crossings([0, 1, 2], {3: 0, 4: 1, 5: 2}, succ) == 1  # 0->4 crosses 1->3
    assert _total_crossings([[0, 1, 2], [3, 4, 5]], succ) == 1
    nodes, edges = _random_dag(80, 7)
    layout = layered_layout(nodes, edges)
    assert layout.boxes  # the reduction keeps the best order it saw, so it never makes things worse
    assert layered_layout(nodes, edges) == layout, "deterministic"


def test_cycles_are_laid_out_instead_of_looping() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a"), ("b", "b")])
    assert set(layout.boxes) == {"a", "b", "c"}


def test_ordered_fit_keeps_order_and_spacing_and_is_closest() -> None:
    assert _ordered_fit([0.0, 100.0], [1.0, 1.0], [50.0, 50.0], [10.0, 10.0]) == [0.0, 100.0]
    # both want 0: they share the difference around the mean
    assert _ordered_fit([0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [10.0, 10.0]) == [-30.0, 30.0]


def test_empty_and_single_node() -> None:
    assert layered_layout([], []).boxes == {}
    assert layered_layout(["x"], [("x", "missing")]).boxes == {"x": Box(0.0, 0.0, 200.0, 60.0)}


def test_ui_boxes_from_a_saved_workflow(capture: Callable[[str], Any], object_info: dict[str, Any]) -> None:
    ui = capture("workflow_ui_example.json")
    wf = Workflow.from_ui(ui, object_info)
    assert wf.ui_layout is not None and set(wf.ui_layout) == set(wf.to_api())
    by_id = {str(n["id"]): n for n in ui["nodes"]}
    for node_id, (x, y, w, h) in wf.ui_layout.items():
        pos, size = by_id[node_id]["pos"], by_id[node_id]["size"]
        assert (x, y + 30, w, h - 30) == (pos[0], pos[1], size[0], size[1])  # title bar above pos
    assert wf.copy().ui_layout == wf.ui_layout
    assert Workflow(wf.to_api()).ui_layout is None


def test_ui_boxes_place_subgraph_nodes_below_the_canvas() -> None:
    ui = {
        "nodes": [{"id": 1, "type": "A", "pos": [0, 0], "size": [100, 50]},
                  {"id": 9, "type": "sg", "pos": [300, 0], "size": [100, 50]}],
        "definitions": {"subgraphs": [{"id": "sg", "nodes": [
            {"id": 1, "type": "B", "pos": {"0": 500, "1": 500}, "size": [80, 40]},
            {"id": 2, "type": "C", "pos": [700, 520], "size": [80, 40]}]}]},
    }
    boxes = ui_boxes(ui, {"1", "9:1", "9:2"})
    assert set(boxes) == {"1", "9:1", "9:2"}
    inner1, inner2 = boxes["9:1"], boxes["9:2"]
    assert inner1.x == 300 and inner1.y > 50  # starts under the instance, below the canvas
    assert (inner2.x - inner1.x, inner2.y - inner1.y) == (200, 20)  # arrangement kept


def test_place_missing_puts_new_nodes_beside_their_links_without_overlap() -> None:
    boxes = {"a": Box(0, 0, 200, 60), "b": Box(400, 0, 200, 60)}
    out = place_missing(boxes, ["a", "lora", "b", "loose"], [("a", "lora"), ("lora", "b")])
    assert set(out) == {"a", "b", "lora", "loose"}
    assert out["lora"].x + out["lora"].w < out["b"].x
    values = list(out.values())
    assert not any(_overlaps(p, q) for i, p in enumerate(values) for q in values[i + 1:])
    assert out["loose"].y >= 60
