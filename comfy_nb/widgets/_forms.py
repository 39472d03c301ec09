"""Form pieces shared by TaskBuilder and ConfigPanel: LoRA stack, dropdown filling, styles."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W

__all__ = ["NONE_LABEL", "LoraStack", "field_layout", "lora_triples", "section", "set_options", "status_html"]

LoraRow = tuple[str, float, float]
"""``(name, strength on the model, strength on CLIP)``: what a LoraLoader takes."""

NONE_LABEL = "(none)"


def field_layout(width: str = "auto") -> W.Layout:
    return W.Layout(width=width)


def set_options(dd: W.Dropdown, values: Sequence[Any], *, keep: Any = None, allow_none: bool = False) -> None:
    """Replace a dropdown's options, keeping the current (or ``keep``) value when it is still offered."""
    current = keep if keep is not None else dd.value
    if allow_none and current is None:
        current = ""
    opts: list[Any] = [(NONE_LABEL, "")] if allow_none else []
    opts += [(str(v), v) for v in values]
    if current not in (None, "") and current not in values:
        opts.append((f"{current} (not on server)", current))
    target = current if (current is not None or allow_none) else (values[0] if values else None)
    dd.options = opts
    if dd.value != target:
        dd.value = target


def lora_triples(items: Any) -> list[LoraRow]:
    """``[(name, model strength, CLIP strength)]`` from config LoRA entries (``LoraSpec``, tuples or names)."""
    out: list[LoraRow] = []
    for x in items or ():
        if hasattr(x, "name"):
            out.append((str(x.name), float(getattr(x, "strength_model", 1.0)), float(getattr(x, "strength_clip", 1.0))))
        elif isinstance(x, str):
            out.append((x, 1.0, 1.0))
        else:
            seq = tuple(x)
            model = float(seq[1]) if len(seq) > 1 else 1.0
            out.append((str(seq[0]), model, float(seq[2]) if len(seq) > 2 else model))
    return out


def section(title: str) -> W.HTML:
    """A small section heading (inline-styled: form widgets carry no stylesheet)."""
    return W.HTML(
        f'<div class="cnb-section" style="font-weight:600;font-size:var(--jp-ui-font-size1,13px);'
        f'color:var(--jp-ui-font-color1,#222);border-bottom:1px solid var(--jp-border-color2,#e0e0e0);'
        f'margin:8px 0 2px;padding-bottom:2px">{html.escape(title)}</div>'
    )


def status_html(text: str, kind: str = "info") -> str:
    """A one-line status message (escaped) colored by ``kind``: info, ok, error."""
    color = {"ok": "var(--jp-success-color1, #388e3c)", "error": "var(--jp-error-color1, #d32f2f)"}.get(
        kind, "var(--jp-ui-font-color2, #616161)"
    )
    return f'<span class="cnb-status cnb-status-{kind}" style="color:{color}">{html.escape(text)}</span>'


class LoraStack(W.VBox):  # type: ignore[misc]
    """Rows of (LoRA name, model strength, CLIP strength) with add / remove buttons."""

    def __init__(self, names: Sequence[str] = (), loras: Sequence[LoraRow] = ()) -> None:
        self._names: list[str] = list(names)
        self._rows = W.VBox([])
        self._add = W.Button(description="Add LoRA", icon="plus", layout=W.Layout(width="110px"))
        self._add.add_class("cnb-lora-add")
        self._add.on_click(lambda _b: self.add_row())
        self._listeners: list[Callable[[], None]] = []
        super().__init__([self._rows, self._add])
        self.add_class("cnb-lora-stack")
        for name, model, clip in loras:
            self.add_row(name, model, clip)

    def on_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def _changed(self, *_args: Any) -> None:
        for fn in self._listeners:
            fn()

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @names.setter
    def names(self, names: Sequence[str]) -> None:
        self._names = list(names)
        for row in self._rows.children:
            set_options(row.children[0], self._names)

    def add_row(self, name: str | None = None, model: float = 1.0, clip: float | None = None) -> None:
        dd = W.Dropdown(description="", layout=W.Layout(width="240px"))
        set_options(dd, self._names, keep=name)
        if dd.value is None and self._names:
            dd.value = self._names[0]
        sliders = [W.FloatSlider(value=value, min=-2.0, max=2.0, step=0.05, description=label,
                                 readout_format=".2f", style={"description_width": "40px"},
                                 layout=W.Layout(width="210px"), tooltip=tip)
                   for value, label, tip in ((model, "model", "strength on the model (UNet)"),
                                             (model if clip is None else clip, "CLIP", "strength on the text encoder"))]
        rm = W.Button(icon="times", tooltip="Remove this LoRA", layout=W.Layout(width="32px"))
        row = W.HBox([dd, *sliders, rm], layout=W.Layout(flex_flow="row wrap"))
        row.add_class("cnb-lora-row")

        def _remove(_b: Any) -> None:
            self._rows.children = tuple(c for c in self._rows.children if c is not row)
            self._changed()

        rm.on_click(_remove)
        dd.observe(self._changed, "value")
        for slider in sliders:
            slider.observe(self._changed, "value")
        self._rows.children = (*self._rows.children, row)
        self._changed()

    @property
    def value(self) -> list[LoraRow]:
        """The stack as ``[(name, model strength, CLIP strength), ...]`` (rows without a name are skipped)."""
        out = []
        for row in self._rows.children:
            name, model, clip = (child.value for child in row.children[:3])
            if name:
                out.append((str(name), float(model), float(clip)))
        return out

    @value.setter
    def value(self, loras: Sequence[LoraRow]) -> None:
        self._rows.children = ()
        for name, model, clip in loras:
            self.add_row(name, model, clip)
