"""The shape of an API-format prompt: what a link is, what a UI save looks like, what a node needs.

One rule each, used by the client (before submitting), the workflows (binding, UI conversion) and the
mock server (execution order), so the three cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from ..errors import WorkflowError

__all__ = ["api_graph", "is_link", "is_ui_workflow", "linked_nodes"]


def is_link(value: Any) -> TypeGuard[list[Any]]:
    """True for an input wired to another node's output: ``[source_node_id: str, output_slot: int]``.

    The server's rule (``comfy_execution.graph_utils.is_link``) also takes a float slot; a bool is not one.
    """
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


def linked_nodes(inputs: Any) -> list[str]:
    """The source node ids that a node's ``inputs`` mapping links to, in input order."""
    if not isinstance(inputs, Mapping):
        return []
    return [value[0] for value in inputs.values() if is_link(value)]


def is_ui_workflow(data: Any) -> bool:
    """True for a LiteGraph save (``{"nodes": [...], "links": [...]}``) rather than an API prompt."""
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list)


def api_graph(prompt: Any) -> dict[str, dict[str, Any]]:
    """A shallow copy of ``prompt`` keyed by string node ids, or a ``WorkflowError`` naming what is wrong.

    Accepts a mapping or anything with ``to_api()`` (a ``Workflow``). Catches here what the server would
    refuse with a vague message or a 500: a UI save, a node without ``class_type``, inputs that are not a
    mapping.
    """
    to_api = getattr(prompt, "to_api", None)
    if callable(to_api):
        prompt = to_api()
    if is_ui_workflow(prompt):
        raise WorkflowError(
            "this is a UI-format workflow (saved with 'Save', not 'Export (API)'; it has 'nodes' and 'links'): "
            "convert it with Workflow.from_ui(data, object_info), using the server's object_info"
        )
    if not isinstance(prompt, Mapping):
        raise WorkflowError(f"a prompt must be an API-format graph (a dict of nodes), not {type(prompt).__name__}")
    graph: dict[str, dict[str, Any]] = {}
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            raise WorkflowError(
                f"node {node_id!r} is not an API-format node: each node needs 'class_type' and 'inputs'"
            )
        class_type = node["class_type"]
        if not isinstance(class_type, str) or not class_type:
            # the server would answer 500 (it looks the value up in a dict): say what is wrong instead
            raise WorkflowError(f"node {node_id!r} has class_type {class_type!r}: it must be a node class name")
        if not isinstance(node.get("inputs", {}), Mapping):
            raise WorkflowError(f"node {node_id!r} ({class_type}): 'inputs' must be a dict of input names to values")
        if node.get("_meta") is not None and not isinstance(node["_meta"], Mapping):
            raise WorkflowError(f"node {node_id!r} ({class_type}): '_meta' must be a dict like {{'title': ...}}")
        graph[str(node_id)] = dict(node)
    return graph


def refuse_non_finite(graph: Mapping[str, Mapping[str, Any]]) -> None:
    """``WorkflowError`` for a NaN or infinite input: JSON cannot carry it and the server's range checks
    would let it through, so it is refused before anything is sent."""
    for node_id, node in graph.items():
        for name, value in dict(node.get("inputs") or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise WorkflowError(
                    f"node {node_id!r} ({node.get('class_type')}) input {name!r} is {value}: JSON cannot "
                    "carry it and the server's range checks would let it through; give a finite number"
                )
