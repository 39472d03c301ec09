"""SweepGrid sends only the cells that changed (a thousand-cell list resent at 20 Hz stalled the kernel's
loop), and the whole state once when a view asks for it."""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from comfy_nb import ComfyClient
from comfy_nb.experiments import CellResult, Sweep
from comfy_nb.mock import MockServer
from comfy_nb.widgets import SweepGrid, _bg
from comfy_nb.workflows import Workflow

from .conftest import front_msg

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "grid/img"}},
}


def _cell_messages(widget: Any) -> list[list[dict[str, Any]]]:
    return [m["content"]["items"] for m in widget.comm.messages
            if isinstance(m, dict) and m.get("method") == "custom" and m["content"].get("type") == "cells"]


def test_grid_sends_changed_cells_only(
    tmp_path: pathlib.Path, mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ComfyClient(mock_server.url) as client:
        axes: dict[str, Any] = {"1.color": [1, 2, 3, 4, 5, 6]}
        run = Sweep(Workflow(GRAPH), **axes).run(client, output_dir=tmp_path)
    listeners: list[Callable[[CellResult], Any]] = []
    subscribe = run.on_update

    def on_update(callback: Callable[[CellResult], Any]) -> Callable[[], None]:
        listeners.append(callback)  # kept, to tell them of a change as the run would
        return subscribe(callback)

    monkeypatch.setattr(run, "on_update", on_update)
    grid = SweepGrid(run)
    assert len(listeners) == 1, "the grid follows the run"
    first = _cell_messages(grid)
    assert [len(items) for items in first] == [6] and {c["state"] for c in first[0]} == {"completed"}
    assert all(set(c) == {"index", "row", "column", "state", "error", "label"} for c in first[0])
    assert "update" not in str([m.get("method") for m in grid.comm.messages if "cells" in str(m.get("state"))])

    changed = dataclasses.replace(run[2], state="failed", error="boom <b>")
    for listener in listeners:  # the run reports that cell 2 changed
        listener(changed)
    grid.flush()
    delta = _cell_messages(grid)[1:]
    assert delta == [[{**first[0][2], "state": "failed", "error": "boom <b>"}]]
    assert grid.cells[2]["state"] == "failed" and len(grid.cells) == 6

    front_msg(grid, {"type": "ready"})
    snapshot = _cell_messages(grid)[-1]
    assert sorted(c["index"] for c in snapshot) == list(range(6)) and snapshot[2]["state"] == "failed"
    grid.close()


def test_grid_sends_each_thumbnail_once_in_batches(
    tmp_path: pathlib.Path, mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ComfyClient(mock_server.url) as client:
        axes: dict[str, Any] = {"1.color": [1, 2, 3, 4, 5, 6]}
        run = Sweep(Workflow(GRAPH), **axes).run(client, output_dir=tmp_path)
    sent: list[dict[str, str]] = []
    all_sent = threading.Event()
    send = SweepGrid.send

    def spy(widget: SweepGrid, content: Any, buffers: Any = None) -> None:
        if content.get("type") == "thumbs" and content["items"]:
            sent.append(content["items"])
            if sum(map(len, sent)) >= 6:
                all_sent.set()
        send(widget, content, buffers)

    handoffs: list[object] = []
    run_in_pool = _bg.run_in_pool

    def counted(fn: Callable[..., Any], *args: Any) -> Any:
        handoffs.append(fn)
        return run_in_pool(fn, *args)

    monkeypatch.setattr(SweepGrid, "send", spy)
    monkeypatch.setattr(_bg, "run_in_pool", counted)
    grid = SweepGrid(run, size=32)
    assert all_sent.wait(30), f"thumbnails sent: {sent}"
    indices = [index for items in sent for index in items]
    assert sorted(indices) == [str(i) for i in range(6)], "each completed cell's thumbnail, once"
    assert all(url.startswith("data:image/") for items in sent for url in items.values())
    assert len(handoffs) == 1, "the six finished cells' thumbnails are one batch, not one hand-off each"
    grid.close()
