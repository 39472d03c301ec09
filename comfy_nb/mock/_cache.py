"""The classic output cache's keys: a node's input signature (class, ``is_changed``, constants and its
ancestors' signatures), so an unchanged node is taken from the cache as ComfyUI does."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import is_link
from ._catalog import Catalog
from ._nodes import NODE_IMPLS

__all__ = ["CacheEntry", "signatures"]


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None


class _FolderContext:
    """Enough of a node context for ``is_changed`` hooks (folders only)."""

    def __init__(self, folder: Callable[[str], str]) -> None:
        self.folder = folder


def _freeze(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return json.dumps(value, sort_keys=True, default=str)


def signatures(prompt: dict[str, Any], catalog: Catalog, folder: Callable[[str], str]) -> dict[str, Any]:
    """Input signature per node: class, is_changed, constants and the ancestors' signatures."""
    sigs: dict[str, Any] = {}
    context = _FolderContext(folder)

    def sig(nid: str, depth: int = 0) -> Any:
        got = sigs.get(nid)
        if got is not None:
            return got
        node = prompt.get(nid)
        if not isinstance(node, dict) or depth > 500:
            return ("missing", nid)
        class_type = str(node.get("class_type"))
        impl = NODE_IMPLS.get(class_type)
        inputs = node.get("inputs") or {}
        parts: list[Any] = [class_type]
        if impl is not None and impl.is_changed is not None:
            parts.append(_freeze(impl.is_changed(context, inputs)))
        if "unique_id" in catalog.input_types(class_type):
            parts.append(("id", nid))
        for name in sorted(inputs):
            value = inputs[name]
            if is_link(value):
                parts.append((name, sig(str(value[0]), depth + 1), _freeze(value[1])))
            else:
                parts.append((name, _freeze(value)))
        result = tuple(parts)
        sigs[nid] = result
        return result

    for nid in prompt:
        sig(nid)
    return sigs
