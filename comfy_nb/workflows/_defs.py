"""Accept ``object_info`` either raw (as the server sends it) or parsed into ``NodeDef``s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from ..protocol import NodeDef, parse_node_defs

__all__ = ["ObjectInfo", "as_node_defs", "as_object_info"]

ObjectInfo: TypeAlias = "Mapping[str, Any] | Mapping[str, NodeDef]"
"""``client.object_info()`` (raw) or ``client.node_defs()`` (parsed): every entry point takes both."""


def as_node_defs(info: ObjectInfo) -> dict[str, NodeDef]:
    if all(isinstance(v, NodeDef) for v in info.values()):
        return dict(info)
    return parse_node_defs(dict(info))


def as_object_info(info: ObjectInfo) -> dict[str, Any]:
    """The raw form ``validate_prompt`` reads; rebuilt from ``NodeDef``s when that is what we have."""
    if not any(isinstance(v, NodeDef) for v in info.values()):
        return dict(info)
    raw: dict[str, Any] = {}
    for name, node_def in info.items():
        assert isinstance(node_def, NodeDef)
        sections: dict[str, dict[str, Any]] = {}
        for spec in node_def.inputs.values():
            sections.setdefault(spec.section, {})[spec.name] = spec.raw
        raw[name] = {
            "input": sections,
            "input_order": {section: list(specs) for section, specs in sections.items()},
            "output": list(node_def.output_types),
            "output_name": list(node_def.output_names),
            "name": name,
            "display_name": node_def.display_name,
            "output_node": node_def.output_node,
        }
    return raw
