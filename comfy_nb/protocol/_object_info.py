"""``GET /object_info`` node definitions, normalised.

The server describes inputs in two combo styles (legacy ``[[options], {...}]`` and V3
``["COMBO", {"options": [...]}]``); ``InputSpec`` hides the difference. Widget order (what the UI
stores positionally in ``widgets_values``) follows ``input_order``: required, then optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WIDGET_TYPES", "InputSpec", "NodeDef", "parse_node_defs"]

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})


@dataclass(frozen=True)
class InputSpec:
    """One input of a node class."""

    name: str
    type: str
    """``INT``/``FLOAT``/``STRING``/``BOOLEAN``/``COMBO`` for widgets, else a link type such as ``IMAGE``."""
    section: str
    """``required``, ``optional`` or ``hidden``."""
    options: list[Any] | None = None
    """Allowed values of a combo (``None`` for other types)."""
    legacy_combo: bool = False
    """True for ``[[...], {...}]`` combos, the only ones the server itself checks."""
    config: dict[str, Any] = field(default_factory=dict)
    raw: Any = None

    @property
    def default(self) -> Any:
        if "default" in self.config:
            return self.config["default"]
        if self.options:
            return self.options[0]
        return None

    @property
    def min(self) -> float | None:
        return _number(self.config.get("min"))

    @property
    def max(self) -> float | None:
        return _number(self.config.get("max"))

    @property
    def is_widget(self) -> bool:
        """True when the UI shows this input as a widget (so it has a slot in ``widgets_values``)."""
        return self.section != "hidden" and self.type in WIDGET_TYPES and not self.config.get("forceInput")

    @property
    def control_after_generate(self) -> bool:
        """Seeds and similar inputs get an extra, unsent ``fixed/increment/...`` widget after them."""
        return bool(self.config.get("control_after_generate"))

    @property
    def is_link(self) -> bool:
        return self.section != "hidden" and not self.is_widget


@dataclass(frozen=True)
class NodeDef:
    """A node class as ``/object_info`` describes it."""

    name: str
    display_name: str
    category: str
    inputs: dict[str, InputSpec]
    """All inputs, in widget order: required, then optional, then hidden."""
    output_types: list[str]
    output_names: list[str]
    output_node: bool

    @property
    def widget_inputs(self) -> list[InputSpec]:
        return [i for i in self.inputs.values() if i.is_widget]

    def input(self, name: str) -> InputSpec | None:
        return self.inputs.get(name)

    @classmethod
    def from_wire(cls, name: str, info: dict[str, Any]) -> NodeDef:
        """One node class; parts of the wrong type read as absent (a custom node's odd definition
        must not make the whole ``/object_info`` unusable)."""
        spec = _dict(info.get("input"))
        order = _dict(info.get("input_order"))
        inputs: dict[str, InputSpec] = {}
        for section in ("required", "optional", "hidden"):
            sect = _dict(spec.get(section))
            names = [n for n in _list(order.get(section)) if isinstance(n, str)] or list(sect)
            names += [n for n in sect if n not in names]
            for input_name in names:
                if input_name in sect:
                    inputs[input_name] = _input_spec(input_name, section, sect[input_name])
        display = info.get("display_name")
        return cls(
            name=name,
            display_name=display if isinstance(display, str) and display else name,
            category=str(info.get("category") or ""),
            inputs=inputs,
            output_types=[t if isinstance(t, str) else "COMBO" for t in _list(info.get("output"))],
            output_names=[str(n) for n in _list(info.get("output_name"))],
            output_node=info.get("output_node") is True,
        )


def _input_spec(name: str, section: str, raw: Any) -> InputSpec:
    if section == "hidden":
        kind = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
        return InputSpec(name=name, type=str(kind), section=section, raw=raw)
    if not isinstance(raw, (list, tuple)) or not raw:
        return InputSpec(name=name, type="*", section=section, raw=raw)
    head = raw[0]
    config = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
    if isinstance(head, list):
        return InputSpec(name, "COMBO", section, list(head), True, config, raw)
    if head == "COMBO":
        return InputSpec(name, "COMBO", section, _list(config.get("options")), False, config, raw)
    return InputSpec(name=name, type=str(head), section=section, config=config, raw=raw)


def _number(value: Any) -> float | None:
    """A bound from the server, or None when it is not a number (so it cannot break a comparison)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def parse_node_defs(object_info: dict[str, Any]) -> dict[str, NodeDef]:
    """Parse a whole ``/object_info`` body."""
    return {name: NodeDef.from_wire(name, info) for name, info in object_info.items() if isinstance(info, dict)}
