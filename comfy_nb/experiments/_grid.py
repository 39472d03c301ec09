"""Grid layout of a sweep's cells, its plain-text form and the PNG contact sheet (no widget code).

Columns are the distinct values of the ``x`` axes, rows those of the ``y`` axes, in the order the
cells first show them, so a zipped sweep is one row and a product is the full table. Axes named in
neither fold into the rows, so every cell has a place of its own.
"""

from __future__ import annotations

import json
import os
import pathlib
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ComfyError

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

    from ._run import SweepRun

__all__ = ["MAX_THUMB", "GridLayout", "contact_sheet", "sheet_size"]

MAX_THUMB = 256
PAD = 4
TITLE_H = 34
HEADER_H = 18
LINE_H = 12


def _label(names: Sequence[str], values: Sequence[Any]) -> str:
    def show(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    if len(names) == 1:
        return show(values[0])
    return ", ".join(f"{n}={show(v)}" for n, v in zip(names, values, strict=True))


class GridLayout:
    """Where each cell of a run goes: ``positions[key] = (row, column)`` and the axis labels."""

    def __init__(self, run: SweepRun, x: str | Sequence[str] | None, y: str | Sequence[str] | None) -> None:
        names = list(run.axes)
        zipped = bool(run.manifest.get("zip"))
        xs = [x] if isinstance(x, str) else list(x) if x is not None else (names if zipped else names[:1])
        ys = [y] if isinstance(y, str) else list(y) if y is not None else []
        unknown = [n for n in [*xs, *ys] if n not in names]
        if unknown:
            raise ComfyError(f"no sweep axis {', '.join(map(repr, unknown))}; the axes are {', '.join(names)}")
        ys += [n for n in names if n not in xs and n not in ys]
        self.x, self.y = xs, ys
        cols: dict[str, int] = {}
        rows: dict[str, int] = {}
        self.column_labels: list[str] = []
        self.row_labels: list[str] = []
        self.positions: dict[str, tuple[int, int]] = {}
        for cell in run.cells:
            xv = [cell.params.get(n) for n in xs]
            yv = [cell.params.get(n) for n in ys]
            ck, rk = json.dumps(xv, sort_keys=True), json.dumps(yv, sort_keys=True)
            if ck not in cols:
                cols[ck] = len(cols)
                self.column_labels.append(_label(xs, xv) if xs else "")
            if rk not in rows:
                rows[rk] = len(rows)
                self.row_labels.append(_label(ys, yv) if ys else "")
            self.positions[cell.key] = (rows[rk], cols[ck])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_labels), len(self.column_labels)

    @property
    def x_title(self) -> str:
        return ", ".join(self.x)

    @property
    def y_title(self) -> str:
        return ", ".join(self.y)

    def text(self, run: SweepRun) -> str:
        """A plain table of cell states (no ids, times or addresses): what ``repr`` shows."""
        n_rows, n_cols = self.shape
        table = [["" for _ in range(n_cols + 1)] for _ in range(n_rows + 1)]
        table[0][0] = f"{self.y_title or ''} \\ {self.x_title or ''}".strip()
        for c, label in enumerate(self.column_labels):
            table[0][c + 1] = label
        for r, label in enumerate(self.row_labels):
            table[r + 1][0] = label
        for result in run:
            r, c = self.positions[result.key]
            table[r + 1][c + 1] = result.state
        widths = [min(30, max(len(row[i]) for row in table)) for i in range(n_cols + 1)]
        lines = ["  ".join(cell[:30].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
        return "\n".join(lines)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.load_default()


def _label_width(labels: Sequence[str]) -> int:
    font = _font()
    longest = max((font.getlength(label[:40]) for label in labels), default=0.0)
    return int(min(300, max(40, longest + 2 * PAD + 4)))


def sheet_size(layout: GridLayout, size: int) -> tuple[int, int]:
    """Pixel size of the contact sheet for this layout and thumbnail size."""
    n_rows, n_cols = layout.shape
    left = _label_width(layout.row_labels)
    return left + n_cols * (size + PAD) + PAD, TITLE_H + HEADER_H + n_rows * (size + PAD) + PAD


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    font = _font()
    while text and font.getlength(text) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def contact_sheet(run: SweepRun, layout: GridLayout, size: int, title: str) -> Image.Image:
    """Draw the sheet: title, axis names, column and row labels, one picture (or error) per cell."""
    from PIL import Image, ImageDraw

    width, height = sheet_size(layout, size)
    left = width - len(layout.column_labels) * (size + PAD) - PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font()
    draw.text((PAD, PAD), _fit_text(draw, title, width - 2 * PAD), fill="black", font=font)
    axes = f"columns: {layout.x_title or '-'}    rows: {layout.y_title or '-'}"
    draw.text((PAD, PAD + 14), _fit_text(draw, axes, width - 2 * PAD), fill=(90, 90, 90), font=font)
    for c, label in enumerate(layout.column_labels):
        text = _fit_text(draw, label, size)
        x0 = left + c * (size + PAD) + PAD + (size - int(font.getlength(text))) // 2
        draw.text((x0, TITLE_H + 2), text, fill="black", font=font)
    for r, label in enumerate(layout.row_labels):
        y0 = TITLE_H + HEADER_H + r * (size + PAD) + PAD
        draw.text((PAD, y0 + size // 2 - 6), _fit_text(draw, label, left - 2 * PAD), fill="black", font=font)
    for result in run:
        r, c = layout.positions[result.key]
        box = (left + c * (size + PAD) + PAD, TITLE_H + HEADER_H + r * (size + PAD) + PAD)
        picture = _first_picture(run.directory, result.outputs, size) if result.state == "completed" else None
        if picture is not None:
            sheet.paste(picture, (box[0] + (size - picture.width) // 2, box[1] + (size - picture.height) // 2))
            continue
        failed = result.state == "failed"
        fill = (253, 226, 226) if failed else (238, 238, 238)
        draw.rectangle((box[0], box[1], box[0] + size - 1, box[1] + size - 1), fill=fill,
                       outline=(200, 60, 60) if failed else (200, 200, 200))
        text = f"failed: {result.error or ''}" if failed else result.state
        lines = textwrap.wrap(text, max(8, size // 7))[: max(1, size // LINE_H - 1)]
        for i, line in enumerate(lines):
            draw.text((box[0] + 3, box[1] + 3 + i * LINE_H), line, fill=(120, 0, 0) if failed else "black", font=font)
    return sheet


def _first_picture(directory: pathlib.Path, outputs: Sequence[str], size: int) -> Image.Image | None:
    from PIL import Image, UnidentifiedImageError

    for rel in outputs:
        try:
            with Image.open(directory / rel) as im:
                im.seek(0)
                picture = im.convert("RGB")
        except (OSError, UnidentifiedImageError):
            continue
        picture.thumbnail((size, size))
        result: Image.Image = picture
        return result
    return None


def save_sheet(run: SweepRun, layout: GridLayout, size: int, title: str, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write the contact sheet as PNG with the sweep (axes, base, every cell's record) in text chunks."""
    from PIL.PngImagePlugin import PngInfo

    sheet = contact_sheet(run, layout, size, title)
    info = PngInfo()
    info.add_text("Title", title)
    info.add_text("Software", "comfy_nb")
    metadata = {
        "format": "comfy_nb.grid/1",
        "title": title,
        "x": layout.x,
        "y": layout.y,
        "axes": run.axes,
        "zip": bool(run.manifest.get("zip")),
        "base": run.manifest.get("base"),
        "cells": [
            {"index": r.index, "key": r.key, "params": r.params, "row": layout.positions[r.key][0],
             "column": layout.positions[r.key][1], "state": r.state, "prompt_id": r.prompt_id, "server": r.server,
             "seed": r.seed, "outputs": list(r.outputs), "error": r.error}
            for r in run
        ],
    }
    info.add_itxt("comfy_nb.sweep", json.dumps(metadata, default=str), zip=True)
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target, format="PNG", pnginfo=info)
    return target
