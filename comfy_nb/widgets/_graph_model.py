"""What the graph view draws, as JSON-ready dicts: the graph once, then each node's live state.

Pure functions (no widgets, no I/O) so the drawing data and the state rules are tested on their own.
Positions come from the UI workflow's boxes when the caller has them, otherwise from the layered layout
(``comfy_nb.workflows._layout``); every link's route is computed here, so the browser only draws.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..workflows._layout import Box, layered_layout, place_missing
from ._util import short, state_name

__all__ = ["NODE_SIZE", "build_graph", "diff_states", "job_summary", "links_of", "node_states"]

NODE_SIZE = (210.0, 64.0)
"""Width and height of a node box in the computed layout (px)."""
_THUMB_EXTRA = 100.0
"""Room under a sink node (an output node) for its thumbnail."""
_HEAD = 26.0
"""Height of a box's title row: ports start below it."""
_PORT_STEP = 14.0
_VALUE_CHARS = 300
_MAX_OUTPUTS = 8


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def links_of(prompt: Mapping[str, Any]) -> list[tuple[str, int, str, str]]:
    """``(source, slot, target, input name)`` for every link between nodes of an API graph."""
    out: list[tuple[str, int, str, str]] = []
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for name, value in inputs.items():
            if _is_link(value) and value[0] in prompt:
                out.append((value[0], value[1], str(node_id), str(name)))
    return out


def _title(node: Any) -> str:
    meta = node.get("_meta") if isinstance(node, Mapping) else None
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return str(title or (node.get("class_type") if isinstance(node, Mapping) else "") or "")


def _value_text(value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"__value__"}:
        value = value["__value__"]
    if isinstance(value, str):
        return short(value, _VALUE_CHARS) if len(value) > _VALUE_CHARS else value
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return short(text, _VALUE_CHARS)


def build_graph(prompt: Mapping[str, Any], ui_layout: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The drawing of an API graph: boxes, inputs and link routes, ready for the ``graph`` trait."""
    ids = [str(k) for k in prompt]
    links = links_of(prompt)
    pairs = [(src, dst) for src, _, dst, _ in links]
    sinks = set(ids) - {src for src, _ in pairs}
    sizes = {v: (NODE_SIZE[0], NODE_SIZE[1] + (_THUMB_EXTRA if v in sinks else 0.0)) for v in ids}
    bends: Mapping[tuple[str, str], tuple[tuple[float, float], ...]] = {}
    given = {k: Box(*map(float, v)) for k, v in (ui_layout or {}).items() if k in prompt}
    if given:
        boxes = place_missing(given, ids, pairs, NODE_SIZE) if len(given) < len(ids) else given
        source = "ui"
    else:
        layout = layered_layout(ids, pairs, sizes, anchor=_HEAD + _PORT_STEP / 2)
        boxes, bends = layout.boxes, layout.bends
        source = "layered"

    out_slots: dict[str, int] = {}
    in_ports: dict[str, list[str]] = {v: [] for v in ids}
    for src, slot, dst, name in links:
        out_slots[src] = max(out_slots.get(src, 0), slot + 1)
        if name not in in_ports[dst]:
            in_ports[dst].append(name)

    def port(box: Box, index: int, count: int, right: bool) -> tuple[float, float]:
        step = min(_PORT_STEP, max(4.0, (box.h - _HEAD - 6.0) / max(count, 1)))
        y = box.y + _HEAD + step * (index + 0.5)
        return (round(box.x + box.w if right else box.x, 1), round(min(y, box.y + box.h - 3.0), 1))

    nodes: list[dict[str, Any]] = []
    for v in ids:
        node = prompt[v]
        box = boxes[v]
        inputs: list[dict[str, Any]] = []
        for name, value in (node.get("inputs") or {}).items():
            if _is_link(value):
                inputs.append({"name": str(name), "link": value[0], "slot": value[1]})
            else:
                inputs.append({"name": str(name), "value": _value_text(value)})
        nodes.append({
            "id": v, "title": _title(node), "class_type": str(node.get("class_type") or ""),
            "x": round(box.x, 1), "y": round(box.y, 1), "w": round(box.w, 1), "h": round(box.h, 1),
            "sink": v in sinks, "inputs": inputs,
        })
    edges: list[dict[str, Any]] = []
    for i, (src, slot, dst, name) in enumerate(links):
        start = port(boxes[src], slot, out_slots[src], right=True)
        end = port(boxes[dst], in_ports[dst].index(name), len(in_ports[dst]), right=False)
        mid = [(round(x, 1), round(y, 1)) for x, y in bends.get((src, dst), ())]
        edges.append({"id": i, "src": src, "slot": slot, "dst": dst, "input": name,
                      "points": [start, *mid, end]})
    xs = [b.x for b in boxes.values()] + [b.x + b.w for b in boxes.values()]
    ys = [b.y for b in boxes.values()] + [b.y + b.h for b in boxes.values()]
    bounds = [min(xs, default=0.0), min(ys, default=0.0), max(xs, default=0.0), max(ys, default=0.0)]
    return {"nodes": nodes, "edges": edges, "bounds": [round(b, 1) for b in bounds], "layout": source}


def node_states(
    ids: list[str], status: Any | None, thumbs: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Each node's state from a ``JobStatus`` (``None``: a workflow that is not running, all idle).

    States: idle, queued, running (with step/steps), cached, done, failed (with the error), skipped
    (the job ended without running it) and interrupted (running when the job was cancelled).
    """
    if status is None:
        return {v: {"state": "idle"} for v in ids}
    job_state = state_name(status.state)
    terminal = bool(status.terminal)
    current = status.current_node.id if status.current_node is not None else None
    error = status.error
    invalid: dict[str, str] = {}
    for ne in status.node_errors or ():
        invalid.setdefault(str(ne.node_id), ne.describe())
    outputs: dict[str, list[dict[str, Any]]] = {}
    for o in status.outputs or ():
        entry = {"kind": o.kind, "filename": o.filename}
        if o.kind == "text":
            entry["text"] = short(o.text or "", 500)
        outputs.setdefault(str(o.node_id), []).append(entry)
    executed, cached = status.executed_nodes, status.cached_nodes
    out: dict[str, dict[str, Any]] = {}
    for v in ids:
        st: dict[str, Any]
        if error is not None and error.node_id == v:
            st = {"state": "failed", "error": error.message, "error_type": error.exception_type or ""}
        elif v in invalid:
            st = {"state": "failed", "error": invalid[v], "error_type": "invalid input"}
        elif v in cached:
            st = {"state": "cached"}
        elif v in executed:
            st = {"state": "done"}
        elif v == current and not terminal:
            st = {"state": "running", "step": int(status.step or 0), "steps": int(status.steps or 0)}
        elif v == current and job_state == "cancelled":
            st = {"state": "interrupted"}
        else:
            st = {"state": "skipped" if terminal else "queued"}
        if v in outputs:
            st["outputs"] = outputs[v][:_MAX_OUTPUTS]
        if thumbs and v in thumbs:
            st["thumb"] = thumbs[v]
        out[v] = st
    return out


def job_summary(status: Any | None) -> dict[str, Any]:
    """The job-level line of the view: state, progress, which node runs."""
    if status is None:
        return {"state": "idle", "terminal": False}
    current = status.current_node
    running = current.id if current is not None and not status.terminal else ""
    return {
        "state": state_name(status.state),
        "progress": round(float(status.progress), 1),
        "running": running,
        "label": current.label if running and current is not None else "",
        "done": int(status.completed_nodes or 0),
        "total": int(status.total_nodes or 0),
        "terminal": bool(status.terminal),
    }


def diff_states(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``new`` that differ from ``old`` (what a patch message carries)."""
    return {k: v for k, v in new.items() if old.get(k) != v}
