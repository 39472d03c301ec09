"""UI-format (LiteGraph) workflow → API-format prompt, exactly as the ComfyUI frontend 1.27.10 converts it.

A port of ``graphToPrompt`` (``src/utils/executionUtil.ts``) and what it calls, read from the
frontend's own source map: PrimitiveNodes write their value into the widgets they feed
(``applyToGraph``); subgraph instances push their promoted widget values into their definitions
(``SubgraphNode.serialize``); every node, subgraph contents included, becomes an execution node
with an ``"outer:inner"`` id (``ExecutableNodeDTO``); widgets are sent through their serializers
(``dynamicPrompts`` choices, ``filename_prefix`` tokens); links resolve through reroutes, bypassed
nodes (first input of a fitting type), subgraph boundaries and promoted widgets; muted and
bypassed nodes are dropped, and so are inputs linked to a dropped node. The frontend's quirks are
kept (a muted subgraph instance changes nothing, a promoted multiline text is sent raw, instances
share their definition's widgets), since the goal is the prompt the frontend would queue. What the
frontend fails on (it throws), or what depends on browser state, raises ``WorkflowError`` naming
the node by its execution id, type and title.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import WorkflowError
from ..protocol import NodeDef, is_ui_workflow
from ._ui_graph import (
    BROWSER_STATE_TYPES,
    PRIMITIVE,
    SAVE_NODE_TYPES,
    SUBGRAPH_INPUT,
    UiGraph,
    UiNode,
    Widget,
    load_graph,
)
from ._ui_text import UNDEFINED, RandomSource, process_dynamic_prompt, replace_tokens

__all__ = ["ui_to_api"]

MUTED, BYPASSED = 2, 4
_REPLACE_PROPERTY = "Run widget replace on values"  # PrimitiveNode's opt-in to %token% replacement


def ui_to_api(
    workflow: Mapping[str, Any],
    node_defs: Mapping[str, NodeDef],
    *,
    rng: RandomSource | int | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """Convert a UI-format workflow with the server's node definitions; raises ``WorkflowError``.

    ``rng`` makes the ``{a|b}`` choices of ``dynamicPrompts`` widgets reproducible: a seed or a
    ``random.Random`` (default: a fresh random draw per conversion, as the frontend does on every queue).
    ``now`` is the clock for ``%date:...%`` tokens in ``filename_prefix`` (default: local time now);
    its wall-clock fields are used as they are.
    """
    if not is_ui_workflow(workflow):
        raise WorkflowError("not a UI-format workflow: expected an object with a 'nodes' list")
    source = random.Random(rng) if rng is None or isinstance(rng, int) else rng
    return _Converter(load_graph(workflow, node_defs), source, now or datetime.now()).convert()


@dataclass(eq=False)
class _Dto:
    """One execution node: a saved node at one place in the subgraph instance tree."""

    node: UiNode
    path: tuple[str, ...]
    """Execution ids of the enclosing subgraph instances, outermost first."""
    instance: _Dto | None
    """The subgraph instance this node sits in (None at the root)."""

    @property
    def id(self) -> str:
        return ":".join((*self.path, str(self.node.id)))


def _describe(dto: _Dto) -> str:
    return dto.node.describe(dto.id)


@dataclass(frozen=True)
class _Value:
    """A widget value that stands in for a link (a promoted widget of a subgraph instance)."""

    value: Any


_Resolved = tuple[str, int] | _Value | None


class _Converter:
    def __init__(self, root: UiGraph, rng: RandomSource, now: datetime) -> None:
        self.root = root
        self.rng = rng
        self.now = now
        self.dtos: dict[str, _Dto] = {}
        self._all_nodes: list[UiNode] | None = None

    def convert(self) -> dict[str, dict[str, Any]]:
        order = _execution_order(self.root)
        for node in order:
            if node.subgraph is not None:
                self._expand(node, (), None)
            dto = _Dto(node, (), None)
            self.dtos.setdefault(dto.id, dto)
        for node in order:
            if node.type == PRIMITIVE:
                self._apply_primitive(node)
        for dto in self.dtos.values():
            if dto.path and dto.node.type == PRIMITIVE and dto.node.widgets:
                raise WorkflowError(
                    f"{_describe(dto)} is a PrimitiveNode inside a subgraph, which the ComfyUI frontend 1.27 "
                    "does not apply (it looks its links up in the root graph); use a subgraph input or a core "
                    "Primitive* node (PrimitiveInt, PrimitiveString, ...) instead"
                )
        self._sync_promoted_values()
        output: dict[str, dict[str, Any]] = {}
        for dto in self.dtos.values():
            node = dto.node
            if node.virtual or node.mode in (MUTED, BYPASSED):
                continue
            output[dto.id] = self._emit(dto)
        for entry in output.values():  # links to nodes that were not emitted are dropped
            for name, value in list(entry["inputs"].items()):
                if value is UNDEFINED or (
                    isinstance(value, list) and len(value) == 2 and value[0] not in output
                ):
                    del entry["inputs"][name]
        return _js_key_order(output)

    # -- building the execution nodes --------------------------------------------------------------
    def _expand(self, node: UiNode, path: tuple[str, ...], parent: _Dto | None) -> None:
        """``SubgraphNode.getInnerNodes``: the instance itself, then its definition's nodes, nested ones in place."""
        instance = _Dto(node, path, parent)
        self.dtos[instance.id] = instance
        assert node.subgraph is not None
        inner_path = (*path, str(node.id))
        if len(inner_path) > 64:
            raise WorkflowError(f"{_describe(instance)}: subgraphs nest deeper than 64 levels")
        for inner in node.subgraph.nodes.values():
            if inner.subgraph is not None:
                self._expand(inner, inner_path, instance)
            else:
                dto = _Dto(inner, inner_path, instance)
                self.dtos[dto.id] = dto

    # -- what happens before serialisation ----------------------------------------------------------
    def _apply_primitive(self, node: UiNode) -> None:
        """``PrimitiveNode.applyToGraph``: copy the value into each widget the primitive is linked to."""
        if not node.widgets or not node.outputs:
            return
        value = node.widgets[0].value
        if value and node.properties.get(_REPLACE_PROPERTY) and isinstance(value, str):
            value = replace_tokens(value, self._nodes_for_tokens, self.now)
        for link_id in node.outputs[0][1]:
            link = self.root.links.get(link_id)
            if link is None:
                raise WorkflowError(
                    f"{node.describe()} lists link {link_id}, which the workflow does not contain"
                )
            target = self.root.nodes.get(link.target_id)
            widget = target.input_widget(link.target_slot) if target is not None else None
            if widget is not None:
                widget.value = value

    def _sync_promoted_values(self) -> None:
        """``SubgraphNode.serialize``: each instance writes its promoted values into the definition's widgets,
        root instances first, then those inside the definitions in use; the last write wins."""
        used: set[int] = set()
        stack = [self.root]
        while stack:
            for node in stack.pop().nodes.values():
                if node.subgraph is not None and id(node.subgraph) not in used:
                    used.add(id(node.subgraph))
                    stack.append(node.subgraph)
        for graph in [self.root, *(d for d in self.root.definitions if id(d) in used)]:
            for node in graph.nodes.values():
                if node.subgraph is None:
                    continue
                for widget in node.widgets:
                    for target in _connected_widgets(node.subgraph, widget.name):
                        target.value = widget.value

    # -- serialising one node ---------------------------------------------------------------------
    def _emit(self, dto: _Dto) -> dict[str, Any]:
        node = dto.node
        if node.node_def is None:
            if node.type.startswith(("workflow>", "workflow/")):
                raise WorkflowError(
                    f"{_describe(dto)} is a legacy group node, which this converter does not expand: open the "
                    "workflow in ComfyUI, convert the group node to a subgraph (or ungroup it) and save again"
                )
            raise WorkflowError(
                f"{_describe(dto)}: class {node.type!r} is not in the server's object_info. It is probably a custom "
                "node that is not installed on that server (or a subgraph whose definition is missing); install "
                "it there, or mute the node in the UI"
            )
        if node.type in BROWSER_STATE_TYPES:
            raise WorkflowError(
                f"{_describe(dto)}: the frontend gives {node.type} widgets of its own (camera, 3D view, audio "
                "player) whose values a saved workflow does not hold; queue it from ComfyUI, or export the "
                "workflow in API format there"
            )
        inputs: dict[str, Any] = {}
        for widget in node.widgets:
            if widget.sent and widget.name:
                inputs[widget.name] = _boxed(self._serialize_widget(dto, widget))
        for index, slot in enumerate(node.inputs):
            resolved = self._resolve_input(dto, index, set(), None)
            if isinstance(resolved, _Value):
                inputs[slot.name] = _boxed(resolved.value)
            elif resolved is not None:
                inputs[slot.name] = [resolved[0], resolved[1]]
        return {"inputs": inputs, "class_type": node.node_def.name, "_meta": {"title": node.title}}

    def _serialize_widget(self, dto: _Dto, widget: Widget) -> Any:
        value = widget.value
        if dto.node.type in SAVE_NODE_TYPES and widget.name == "filename_prefix":
            if not isinstance(value, str):
                raise WorkflowError(
                    f"{_describe(dto)}: filename_prefix is {value!r}, not text; the frontend cannot expand it"
                )
            return replace_tokens(value, self._nodes_for_tokens, self.now)
        if widget.dynamic_prompts and isinstance(value, str):
            return process_dynamic_prompt(value, self.rng)
        return value

    def _nodes_for_tokens(self) -> list[UiNode]:
        if self._all_nodes is None:
            self._all_nodes = list(self.root.walk())
        return self._all_nodes

    # -- resolving links (ExecutableNodeDTO.resolveInput / resolveOutput) ------------------------------
    def _resolve_input(self, dto: _Dto, slot: int, visited: set[str], link_type: Any) -> _Resolved:
        node = dto.node
        self._visit(visited, dto, "I", slot)
        link_id = node.inputs[slot].link if slot < len(node.inputs) else None
        if link_id is None:
            return None
        link = node.graph.links.get(link_id)
        if link is None:
            raise WorkflowError(
                f"{_describe(dto)}: input {node.inputs[slot].name!r} uses link {link_id}, which the workflow "
                "does not contain"
            )
        instance = dto.instance
        if instance is not None and link.origin_id == SUBGRAPH_INPUT:
            outer = instance.node
            if link.origin_slot >= len(outer.inputs):
                raise WorkflowError(
                    f"{_describe(instance)} has no input {link.origin_slot} for its subgraph to read"
                )
            outer_slot = outer.inputs[link.origin_slot]
            if outer_slot.link is None:
                widget = outer.input_widget(link.origin_slot)
                return None if widget is None else _Value(widget.value)
            outer_link = outer.graph.links.get(outer_slot.link)
            if outer_link is None:
                raise WorkflowError(
                    f"{_describe(instance)}: input {outer_slot.name!r} uses link {outer_slot.link}, which the "
                    "workflow does not contain"
                )
            return self._resolve_input(instance, outer_link.target_slot, visited, None)
        origin = node.graph.nodes.get(link.origin_id)
        if origin is None:
            raise WorkflowError(
                f"{_describe(dto)}: input {node.inputs[slot].name!r} is linked from node {link.origin_id}, "
                "which is not in its graph"
            )
        origin_dto = self.dtos[":".join((*dto.path, str(origin.id)))]
        wanted = link_type if link_type is not None else node.inputs[slot].type
        return self._resolve_output(origin_dto, link.origin_slot, wanted, visited)

    def _resolve_output(self, dto: _Dto, slot: int, link_type: Any, visited: set[str]) -> _Resolved:
        node = dto.node
        self._visit(visited, dto, "O", slot)
        if node.mode == BYPASSED:
            index = _bypass_slot(dto, slot, link_type)
            return None if index == -1 else self._resolve_input(dto, index, visited, None)
        if node.subgraph is not None:
            return self._resolve_subgraph_output(dto, slot, link_type, visited)
        if node.virtual:
            return self._resolve_input(dto, slot, visited, link_type) if slot < len(node.inputs) else None
        return (dto.id, slot)

    def _resolve_subgraph_output(self, dto: _Dto, slot: int, link_type: Any, visited: set[str]) -> _Resolved:
        node = dto.node
        assert node.subgraph is not None
        if slot >= len(node.outputs) or slot >= len(node.subgraph.outputs):
            raise WorkflowError(f"{_describe(dto)} has no output {slot}")
        links = [node.subgraph.links[i] for i in node.subgraph.outputs[slot][1] if i in node.subgraph.links]
        if not links:
            return None
        inner = node.subgraph.nodes.get(links[0].origin_id)
        if inner is None:
            raise WorkflowError(
                f"{_describe(dto)}: subgraph output {slot} is wired straight from a subgraph input (or from a "
                "missing node), which the ComfyUI frontend 1.27 cannot convert; put a node between them"
            )
        inner_dto = self.dtos[f"{dto.id}:{inner.id}"]
        return self._resolve_output(inner_dto, links[0].origin_slot, link_type, visited)

    @staticmethod
    def _visit(visited: set[str], dto: _Dto, side: str, slot: int) -> None:
        graph_id = dto.instance.node.subgraph.id if dto.instance and dto.instance.node.subgraph else None
        key = f"{graph_id}:{dto.node.id}[{side}]{slot}"
        if key in visited:
            raise WorkflowError(
                f"{_describe(dto)}: links loop back on themselves through reroutes, bypassed nodes or subgraph "
                "boundaries (the ComfyUI frontend 1.27 reports a circular reference here)"
            )
        visited.add(key)


def _connected_widgets(sub: UiGraph, input_name: str) -> list[Widget]:
    """``SubgraphInput.getConnectedWidgets``: the inner widgets a subgraph input feeds."""
    found: list[Widget] = []
    for link_id in sub.input_link_ids(input_name):
        link = sub.links.get(link_id)
        target = sub.nodes.get(link.target_id) if link is not None else None
        widget = target.input_widget(link.target_slot) if target and link else None
        if widget is not None:
            found.append(widget)
    return found


def _bypass_slot(dto: _Dto, slot: int, link_type: Any) -> int:
    """``ExecutableNodeDTO.#getBypassSlotIndex``: which input a bypassed node passes to output ``slot``."""
    inputs = dto.node.inputs
    if slot >= len(dto.node.outputs):
        raise WorkflowError(f"{_describe(dto)} is bypassed but has no output {slot}")
    output_type = dto.node.outputs[slot][0]
    if link_type in ("*", ""):
        return slot if len(inputs) > slot else 0
    if (
        slot < len(inputs)
        and _valid_connection(inputs[slot].type, output_type)
        and _valid_connection(inputs[slot].type, link_type)
    ):
        return slot
    for index, item in enumerate(inputs):
        if item.type == link_type:
            return index
    for index, item in enumerate(inputs):
        if _valid_connection(item.type, output_type) and _valid_connection(item.type, link_type):
            return index
    return -1


def _valid_connection(a: Any, b: Any) -> bool:
    """``LiteGraph.isValidConnection``: ``*``/empty match anything, else case-insensitive, comma lists."""
    a = 0 if a in ("", "*") else a
    b = 0 if b in ("", "*") else b
    if not a or not b or a == b:
        return True
    left, right = str(a).lower(), str(b).lower()
    if "," not in left and "," not in right:
        return left == right
    return any(_valid_connection(x, y) for x in left.split(",") for y in right.split(","))


def _execution_order(graph: UiGraph) -> list[UiNode]:
    """``LGraph.computeExecutionOrder``: Kahn's order from the saved slots; nodes left in loops come last."""
    pending = {id(n): n for n in graph.nodes.values()}
    remaining: dict[int, int] = {}
    ready: list[UiNode] = []
    for node in graph.nodes.values():
        count = sum(1 for slot in node.inputs if slot.link is not None)
        if count:
            remaining[id(node)] = count
        else:
            ready.append(node)
    order: list[UiNode] = []
    seen_links: set[Any] = set()
    while ready:
        node = ready.pop(0)
        order.append(node)
        pending.pop(id(node), None)
        for _, link_ids in node.outputs:
            for link_id in link_ids:
                link = graph.links.get(link_id)
                if link is None or link_id in seen_links:
                    continue
                seen_links.add(link_id)
                target = graph.nodes.get(link.target_id)
                if target is None:
                    continue
                remaining[id(target)] = remaining.get(id(target), 0) - 1
                if remaining[id(target)] == 0:
                    ready.append(target)
    # JavaScript lists the leftovers in object-key order: integer ids ascending, then the rest as added.
    left = list(pending.values())
    numeric = sorted((n for n in left if _is_index(str(n.id))), key=lambda n: int(str(n.id)))
    return order + numeric + [n for n in left if not _is_index(str(n.id))]


def _boxed(value: Any) -> Any:
    """Arrays mean links in the API format, so array values travel as ``{"__value__": [...]}``;
    numbers are spelled as JSON.stringify spells them (``2.0`` is ``2``)."""
    if isinstance(value, list):
        return {"__value__": [_js_number(v) for v in value]}
    return _js_number(value)


def _js_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def _is_index(key: str) -> bool:
    return key.isdigit() and (key == "0" or not key.startswith("0")) and int(key) < 2**32 - 1


def _js_key_order(output: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Key order of the frontend's JSON: integer-like ids ascending, then the others as inserted."""
    numeric = sorted((k for k in output if _is_index(k)), key=int)
    return {k: output[k] for k in numeric + [k for k in output if not _is_index(k)]}
