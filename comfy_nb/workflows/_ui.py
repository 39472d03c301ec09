"""UI-format (LiteGraph) workflow → API-format prompt, the way the ComfyUI frontend 1.27 converts it.

Checked against the real frontend's output for the ``workflow_ui_*.json`` captures. The rules
(reference §13): one API node per real node that is neither muted (mode 2) nor bypassed (mode 4);
``widgets_values`` is positional over the widget inputs of the node definition (required, then
optional), with an extra unsent slot after every ``control_after_generate`` input and after upload
combos; links resolve through ``Reroute`` nodes, bypassed nodes (to their input of the same type)
and subgraph boundaries; a ``PrimitiveNode`` writes its value into the widgets it feeds; a link to a
muted node is deleted from its consumer; ``Note``/``MarkdownNote`` and groups are ignored; subgraph
instances are flattened with ``"outer:inner"`` ids. Whatever cannot be converted raises
``WorkflowError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowError
from ..protocol import InputSpec, NodeDef, is_link, is_ui_workflow

__all__ = ["is_ui_workflow", "ui_to_api"]

MUTED, BYPASSED = 2, 4
_REROUTE, _PRIMITIVE = "Reroute", "PrimitiveNode"
_NOTES = frozenset({"Note", "MarkdownNote"})
_SUBGRAPH_INPUT, _SUBGRAPH_OUTPUT = -10, -20
# Combo options after which the frontend adds an upload button that takes a widgets_values slot.
_UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "file_upload")


@dataclass(frozen=True)
class _Link:
    origin: Any
    origin_slot: int
    type: Any


@dataclass(frozen=True)
class _Deleted:
    """A link to a muted node: the frontend deletes the consumer's input."""


@dataclass(frozen=True)
class _Const:
    """A value a ``PrimitiveNode`` (or a subgraph's promoted widget) writes into a widget."""

    value: Any


_Source = tuple[str, int] | _Const | _Deleted | None
_MISSING = object()


class _Scope:
    """One graph level: the root, or the inside of one subgraph instance."""

    def __init__(
        self,
        nodes: list[Any],
        links: list[Any],
        prefix: str,
        parent: tuple[_Scope, dict[str, Any]] | None,
    ) -> None:
        self.nodes: dict[Any, dict[str, Any]] = {}
        for node in nodes:
            if isinstance(node, dict) and "id" in node:
                self.nodes[node["id"]] = node
        self.links: dict[Any, _Link] = {}
        for link in links:
            if isinstance(link, list) and len(link) >= 6:
                self.links[link[0]] = _Link(link[1], int(link[2]), link[5])
            elif isinstance(link, dict) and "id" in link:
                self.links[link["id"]] = _Link(
                    link.get("origin_id"), int(link.get("origin_slot", 0)), link.get("type")
                )
        self.prefix = prefix
        self.parent = parent
        """The enclosing scope and this scope's instance node there (None at the root)."""

    def full_id(self, node_id: Any) -> str:
        return f"{self.prefix}{node_id}"

    def input_link(self, node: dict[str, Any], index: int) -> _Link | None:
        inputs = node.get("inputs") or []
        link_id = (
            inputs[index].get("link") if index < len(inputs) and isinstance(inputs[index], dict) else None
        )
        return self.links.get(link_id) if link_id is not None else None


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], node_defs: Mapping[str, NodeDef]) -> None:
        self.defs = node_defs
        definitions = workflow.get("definitions") or {}
        self.subgraphs: dict[str, dict[str, Any]] = {
            s["id"]: s for s in definitions.get("subgraphs") or [] if isinstance(s, dict) and "id" in s
        }
        self.group_nodes = (workflow.get("extra") or {}).get("groupNodes") or {}
        self.root = _Scope(workflow.get("nodes") or [], workflow.get("links") or [], "", None)
        self.output: dict[str, dict[str, Any]] = {}

    # -- emitting nodes ------------------------------------------------------------------------
    def convert(self) -> dict[str, dict[str, Any]]:
        self._emit_scope(self.root, depth=0)
        for node in self.output.values():  # links to nodes that were not emitted are dropped
            for name, value in list(node["inputs"].items()):
                if is_link(value) and value[0] not in self.output:
                    del node["inputs"][name]
        return _js_key_order(self.output)

    def _emit_scope(self, scope: _Scope, depth: int) -> None:
        if depth > 32:
            raise WorkflowError(
                f"subgraphs nest deeper than 32 levels at {scope.prefix!r}: a subgraph contains itself"
            )
        for node in sorted(scope.nodes.values(), key=lambda n: (n.get("order", 0), str(n["id"]))):
            kind = node.get("type")
            if kind in _NOTES or kind in (_REROUTE, _PRIMITIVE) or node.get("mode") in (MUTED, BYPASSED):
                continue
            if kind in self.subgraphs:
                definition = self.subgraphs[kind]
                inner = _Scope(
                    definition.get("nodes") or [],
                    definition.get("links") or [],
                    f"{scope.full_id(node['id'])}:",
                    (scope, node),
                )
                self._emit_scope(inner, depth + 1)
                continue
            self._emit_node(scope, node)

    def _emit_node(self, scope: _Scope, node: dict[str, Any]) -> None:
        node_def = self._node_def(scope, node)
        inputs: dict[str, Any] = {}
        for spec, value in self._widget_values(scope, node, node_def):
            inputs[spec.name] = {"__value__": value} if isinstance(value, list) else value
        for index, slot in enumerate(node.get("inputs") or []):
            name = slot.get("name") if isinstance(slot, dict) else None
            if not isinstance(name, str) or scope.input_link(node, index) is None:
                continue
            source = self._resolve_input(scope, node, index, hops=0)
            if isinstance(source, tuple):
                inputs[name] = [source[0], source[1]]
            elif isinstance(source, _Const):
                inputs[name] = {"__value__": source.value} if isinstance(source.value, list) else source.value
            elif isinstance(source, _Deleted):
                inputs.pop(name, None)
        title = node.get("title") or node_def.display_name or node_def.name
        self.output[scope.full_id(node["id"])] = {
            "inputs": inputs,
            "class_type": node_def.name,
            "_meta": {"title": title},
        }

    def _node_def(self, scope: _Scope, node: dict[str, Any]) -> NodeDef:
        kind = node.get("type")
        node_def = self.defs.get(kind) if isinstance(kind, str) else None
        if node_def is not None:
            return node_def
        who = _describe(scope, node)
        if (
            (isinstance(kind, str)
            and kind.startswith(("workflow>", "workflow/")))
            or (kind in self.group_nodes)
        ):
            raise WorkflowError(
                f"{who} is a legacy group node, which this converter does not expand: open the workflow in "
                "ComfyUI, convert the group node to a subgraph (or ungroup it) and save again"
            )
        raise WorkflowError(
            f"{who}: class {kind!r} is not in the server's object_info. It is probably a custom node that is "
            "not installed on that server (or a subgraph whose definition is missing); install it there, or "
            "mute the node in the UI"
        )

    def _widget_values(
        self, scope: _Scope, node: dict[str, Any], node_def: NodeDef
    ) -> list[tuple[InputSpec, Any]]:
        """Pair each widget input with its stored value (defaults where the file has none)."""
        widgets = node_def.widget_inputs
        stored = node.get("widgets_values")
        if isinstance(stored, dict):  # some saves key the values by widget name
            return [(w, stored.get(w.name, w.default)) for w in widgets]
        values = list(stored or [])
        layout: list[InputSpec | None] = []
        for widget in widgets:
            layout.append(widget)
            if widget.control_after_generate:
                layout.append(None)
            if any(widget.config.get(k) for k in _UPLOAD_OPTIONS):
                layout.append(None)
        if len(values) > len(layout):
            names = ", ".join(w.name for w in widgets) or "none"
            raise WorkflowError(
                f"{_describe(scope, node)} stores {len(values)} widget values but {node_def.name} on this server "
                f"has {len(layout)} widget slots (widget inputs: {names}); the node's definition differs from "
                "the one the workflow was saved with"
            )
        values += [_MISSING] * (len(layout) - len(values))
        return [(w, w.default if v is _MISSING else v) for w, v in zip(layout, values, strict=False) if w is not None]

    # -- resolving links -----------------------------------------------------------------------
    def _resolve_input(self, scope: _Scope, node: dict[str, Any], index: int, hops: int) -> _Source:
        link = scope.input_link(node, index)
        if link is None:
            return None
        return self._resolve_output(scope, link.origin, link.origin_slot, link.type, hops + 1)

    def _resolve_output(self, scope: _Scope, origin: Any, slot: int, link_type: Any, hops: int) -> _Source:
        """What a consumer of ``origin``'s output ``slot`` receives once virtual nodes are removed."""
        if hops > 10_000:
            raise WorkflowError(
                f"links loop through reroute/bypassed nodes around node {scope.full_id(origin)}"
            )
        if origin == _SUBGRAPH_INPUT and scope.parent is not None:
            return self._resolve_boundary_input(scope, slot, hops)
        node = scope.nodes.get(origin)
        if node is None:
            return _Deleted()
        kind = node.get("type")
        if node.get("mode") == MUTED:
            return _Deleted()
        if kind == _PRIMITIVE:
            values = node.get("widgets_values") or []
            if not values:
                raise WorkflowError(
                    f"{_describe(scope, node)} has no value to write into the widget it feeds"
                )
            return _Const(values[0])
        if kind == _REROUTE:
            return self._resolve_input(scope, node, 0, hops)
        if node.get("mode") == BYPASSED:
            index = _bypass_input(node, slot, link_type)
            return None if index is None else self._resolve_input(scope, node, index, hops)
        if kind in self.subgraphs:
            definition = self.subgraphs[kind]
            inner = _Scope(
                definition.get("nodes") or [],
                definition.get("links") or [],
                f"{scope.full_id(origin)}:",
                (scope, node),
            )
            for link_id, target in _subgraph_output_links(definition):
                if target == slot and link_id in inner.links:
                    inner_link = inner.links[link_id]
                    return self._resolve_output(
                        inner, inner_link.origin, inner_link.origin_slot, link_type, hops + 1
                    )
            return None
        return (scope.full_id(origin), slot)

    def _resolve_boundary_input(self, scope: _Scope, slot: int, hops: int) -> _Source:
        """A link from a subgraph's input: continue outside, from the instance node's input ``slot``."""
        assert scope.parent is not None
        outer, instance = scope.parent
        if outer.input_link(instance, slot) is not None:
            return self._resolve_input(outer, instance, slot, hops)
        promoted = [i for i in instance.get("inputs") or [] if isinstance(i, dict) and i.get("widget")]
        slots = instance.get("inputs") or []
        values = instance.get("widgets_values") or []
        if slot < len(slots) and slots[slot] in promoted and isinstance(values, list):
            position = promoted.index(slots[slot])
            if position < len(values):
                return _Const(values[position])
        return None


def _bypass_input(node: dict[str, Any], slot: int, link_type: Any) -> int | None:
    """The input a bypassed node passes through to output ``slot``: same index if the type fits, else the first that does."""
    inputs = [i if isinstance(i, dict) else {} for i in node.get("inputs") or []]
    outputs = node.get("outputs") or []
    wanted = {link_type}
    if slot < len(outputs) and isinstance(outputs[slot], dict):
        wanted.add(outputs[slot].get("type"))
    wanted.discard(None)
    if slot < len(inputs) and inputs[slot].get("type") in wanted:
        return slot
    for index, slot_info in enumerate(inputs):
        if slot_info.get("type") in wanted:
            return index
    return None


def _subgraph_output_links(definition: dict[str, Any]) -> list[tuple[Any, int]]:
    """``(inner link id, subgraph output index)`` for every link into the subgraph's output node."""
    out: list[tuple[Any, int]] = []
    for index, output in enumerate(definition.get("outputs") or []):
        for link_id in (output or {}).get("linkIds") or []:
            out.append((link_id, index))
    for link in definition.get("links") or []:
        if isinstance(link, dict) and link.get("target_id") == _SUBGRAPH_OUTPUT:
            out.append((link.get("id"), int(link.get("target_slot", 0))))
    return out


def _describe(scope: _Scope, node: dict[str, Any]) -> str:
    title = node.get("title")
    text = f"node {scope.full_id(node.get('id'))} ({node.get('type')}"
    return text + (f', "{title}")' if title else ")")


def _js_key_order(output: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Key order of the frontend's JSON: integer-like ids ascending, then the others as inserted."""
    numeric = sorted((k for k in output if k.isdigit()), key=int)
    return {k: output[k] for k in numeric + [k for k in output if not k.isdigit()]}


def ui_to_api(workflow: Mapping[str, Any], node_defs: Mapping[str, NodeDef]) -> dict[str, dict[str, Any]]:
    """Convert a UI-format workflow with the server's node definitions; raises ``WorkflowError``."""
    if not is_ui_workflow(workflow):
        raise WorkflowError("not a UI-format workflow: expected an object with a 'nodes' list")
    return _Converter(workflow, node_defs).convert()
