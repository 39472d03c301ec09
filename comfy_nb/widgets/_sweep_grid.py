"""``SweepGrid``: the live widget over a ``SweepRun`` (``SweepGrid(run, x=..., y=...)``).

Only the cells that changed travel, as custom messages at most ~20 times a second (a thousand-cell
list rebuilt, validated and serialised at that rate held the kernel's event loop for tens of ms each
time); a view that (re)renders asks for the whole state once. Thumbnails are made from the downloaded
files on the widgets' thread pool, in batches, and sent once each, so the grid never resends its pictures.
"""

from __future__ import annotations

import os
import pathlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..experiments._grid import MAX_THUMB, GridLayout, save_sheet, sheet_size
from ..experiments._store import CellResult
from . import _bg
from ._images import data_url, downscale
from ._throttle import Throttle

if TYPE_CHECKING:
    from ..experiments._run import SweepRun

__all__ = ["SweepGrid"]

_STATIC = pathlib.Path(__file__).parent / "static"


def _thumbnail(path: pathlib.Path, size: int) -> str:
    try:
        small, mime = downscale(path.read_bytes(), size, quality=75)
    except (OSError, ValueError):
        return ""
    return data_url(small, mime)


class SweepGrid(anywidget.AnyWidget):
    """Cells of a sweep laid out by axis values; fills in as cells finish, errors shown in place.

    ``save(path)`` writes a PNG contact sheet with axis labels, a title and the sweep's metadata.
    """

    _esm = _STATIC / "sweep_grid.js"
    _css = (_STATIC / "sweep_grid.css").read_text(encoding="utf-8")

    title = t.Unicode("").tag(sync=True)
    summary = t.Unicode("").tag(sync=True)
    x_title = t.Unicode("").tag(sync=True)
    y_title = t.Unicode("").tag(sync=True)
    columns = t.List(t.Unicode()).tag(sync=True)
    rows = t.List(t.Unicode()).tag(sync=True)
    size = t.Int(128).tag(sync=True)

    def __init__(
        self,
        run: SweepRun,
        x: str | Sequence[str] | None = None,
        y: str | Sequence[str] | None = None,
        *,
        size: int = 128,
        title: str | None = None,
    ) -> None:
        """Lay ``run``'s cells out by the values of ``x`` (columns) and ``y`` (rows); each one axis name or several.

        By default the first axis makes the columns (all of them for a zipped sweep) and the rest the rows.
        """
        layout = GridLayout(run, x, y)
        default_title = "sweep over " + " by ".join(n for n in (layout.x_title, layout.y_title) if n)
        super().__init__(
            title=title or default_title, x_title=layout.x_title, y_title=layout.y_title,
            columns=layout.column_labels, rows=layout.row_labels, size=max(32, min(MAX_THUMB, int(size))),
        )
        self.run = run
        self.grid_layout = layout
        self._thumbs: dict[str, str] = {}
        self._new_thumbs: dict[str, str] = {}
        self._cells: dict[int, dict[str, Any]] = {}
        self._changed: dict[int, CellResult] = {}
        self._thumb_todo: list[CellResult] = []
        self._thumbing = False
        """A batch of thumbnails is being made on the widgets' pool (one at a time)."""
        self._lock = threading.Lock()
        self._throttle: Throttle[None] = Throttle(self._flush)
        self._unsubscribe = run.on_update(self._on_cell)
        self.on_msg(self._on_front)
        results = list(run)
        with self._lock:  # every cell is pending before a thumbnail's delivery can flush
            for r in results:  # a change that came in meanwhile is newer: keep it
                self._changed.setdefault(r.index, r)
        for result in results:
            if result.state == "completed":
                self._make_thumbnail(result)
        self._flush(None)

    # ------------------------------------------------------------------ updates

    @property
    def cells(self) -> list[dict[str, Any]]:
        """``{index, row, column, state, error, label}`` per cell as last sent (no pictures)."""
        with self._lock:
            return [self._cells[i] for i in sorted(self._cells)]

    def _on_cell(self, result: CellResult) -> None:
        with self._lock:
            self._changed[result.index] = result
        if result.state == "completed":
            self._make_thumbnail(result)
        self._throttle.push(None)

    def _make_thumbnail(self, result: CellResult) -> None:
        if result.outputs:
            with self._lock:  # made in the next batch (see _flush)
                self._thumb_todo.append(result)

    def _start_thumbnails(self) -> None:
        """Hand the cells finished since the last batch to the widgets' pool (caller holds the lock).

        Batches start from ``_flush``, so at most ~20 a second: a thousand finishing cells cost a few
        hundred thread hand-offs, not a thousand (each one a GIL switch the kernel's loop waits for).
        """
        if self._thumbing or not self._thumb_todo:
            return
        todo, self._thumb_todo = self._thumb_todo, []
        self._thumbing = True
        _bg.on_done(_bg.run_in_pool(self._make_thumbnails, todo), lambda _: None)  # a failure is logged

    def _make_thumbnails(self, todo: list[CellResult]) -> None:
        made: dict[str, str] = {}
        try:
            for r in todo:
                if url := _thumbnail(self.run.directory / r.outputs[0], self.size):
                    made[str(r.index)] = url
        finally:
            with self._lock:
                self._new_thumbs.update(made)
                self._thumbing = False
            self._throttle.push(None)  # delivers them and starts the next batch

    def _flush(self, _: None) -> None:
        counts = self.run.counts()
        self.summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        with self._lock:
            changed, self._changed = self._changed, {}
            items = [self._cell(r) for r in changed.values()]
            self._cells.update((item["index"], item) for item in items)
            fresh, self._new_thumbs = self._new_thumbs, {}
            self._thumbs.update(fresh)
            self._start_thumbnails()
        if items:
            self.send({"type": "cells", "items": items})
        if fresh:
            self.send({"type": "thumbs", "items": fresh})

    def _cell(self, result: CellResult) -> dict[str, Any]:
        row, column = self.grid_layout.positions[result.key]
        label = ", ".join(f"{k}={v}" for k, v in result.params.items())
        return {"index": result.index, "row": row, "column": column, "state": result.state,
                "error": (result.error or "")[:500], "label": label}

    def _on_front(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ready":
            with self._lock:
                cells, thumbs = list(self._cells.values()), dict(self._thumbs)
            self.send({"type": "cells", "items": cells})
            self.send({"type": "thumbs", "items": thumbs})

    def flush(self) -> None:
        """Deliver any pending update now (the view otherwise catches up within 50 ms)."""
        self._throttle.flush()

    def close(self) -> None:
        if hasattr(self, "_unsubscribe"):  # not when __init__ refused the axes before wiring anything
            self._unsubscribe()
            self._throttle.close()
        super().close()

    # ------------------------------------------------------------------ output

    def sheet_size(self, size: int | None = None) -> tuple[int, int]:
        """Pixel size of ``save()``'s contact sheet."""
        return sheet_size(self.grid_layout, size or self.size)

    def save(self, path: str | os.PathLike[str], *, size: int | None = None) -> pathlib.Path:
        """Write the contact sheet PNG (thumbnails of ``size`` px, default the widget's)."""
        return save_sheet(self.run, self.grid_layout, max(32, min(MAX_THUMB, size or self.size)), self.title, path)

    def __repr__(self) -> str:
        n_rows, n_cols = self.grid_layout.shape
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.run.counts().items()))
        return f"SweepGrid({self.title!r}: {n_rows}×{n_cols}, {counts})\n{self.grid_layout.text(self.run)}"
