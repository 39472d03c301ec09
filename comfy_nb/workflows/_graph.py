"""The API-format graph under ``Workflow``: nodes by id, finding them, following links, and editing
inputs so that a value behind a primitive node is set at its source."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import WorkflowError
from ..protocol import api_graph, is_link

__all__ = ["Graph", "Node"]


class Node:
    """A live view of one node: edits to ``inputs`` and ``title`` change the graph it is in."""

    def __init__(self, graph: Graph, node_id: str) -> None:
        self._graph = graph
        self.id = node_id

    @property
    def _data(self) -> dict[str, Any]:
        return self._graph._nodes[self.id]

    @property
    def class_type(self) -> str:
        return str(self._data["class_type"])

    @property
    def inputs(self) -> dict[str, Any]:
        """The node's inputs: constants, or ``[source_id, output_index]`` links."""
        inputs: dict[str, Any] = self._data["inputs"]
        return inputs

    @property
    def title(self) -> str | None:
        meta = self._data.get("_meta")
        return meta.get("title") if isinstance(meta, dict) else None

    @title.setter
    def title(self, value: str) -> None:
        self._data.setdefault("_meta", {})["title"] = value

    def output(self, index: int = 0) -> list[Any]:
        """A link to this node's output ``index``, ready to assign to another node's input."""
        return [self.id, index]

    def __getitem__(self, name: str) -> Any:
        return self.inputs[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.inputs[name] = value

    def describe(self) -> str:
        title = f' "{self.title}"' if self.title and self.title != self.class_type else ""
        return f"{self.id} {self.class_type}{title}"

    def __repr__(self) -> str:
        return f"<Node {self.describe()}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._graph is self._graph and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Graph:
    """``{node_id: {"class_type", "inputs", "_meta"}}``, validated and copied on the way in."""

    def __init__(self, prompt: Mapping[str, Any]) -> None:
        graph = api_graph(prompt)
        if not graph:
            raise WorkflowError(
                "an API-format workflow is a non-empty JSON object {node_id: {class_type, inputs}}"
            )
        self._nodes: dict[str, dict[str, Any]] = {}
        for node_id, node in graph.items():
            data = copy.deepcopy(node)
            data["inputs"] = dict(data.get("inputs") or {})
            self._nodes[node_id] = data

    def to_api(self) -> dict[str, Any]:
        """The prompt to POST: a deep copy, JSON-ready."""
        return copy.deepcopy(self._nodes)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self._nodes, indent=indent, ensure_ascii=False)

    def __getitem__(self, node_id: str | int) -> Node:
        key = str(node_id)
        if key not in self._nodes:
            raise WorkflowError(f"no node {key!r} in this workflow; nodes: {self._listing(self.nodes())}")
        return Node(self, key)

    def __contains__(self, node_id: object) -> bool:
        return str(node_id) in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes(self, class_type: str | None = None, *, title: str | None = None) -> list[Node]:
        """Every node, or those of a class and/or with a title."""
        found = [Node(self, k) for k in self._nodes]
        if class_type is not None:
            found = [n for n in found if n.class_type == class_type]
        if title is not None:
            found = [n for n in found if n.title == title]
        return found

    def node(self, class_type: str | None = None, *, title: str | None = None) -> Node:
        """The one node of a class and/or with a title (an id works too); ambiguity is an error."""
        if class_type is not None and title is None and class_type in self._nodes:
            return self[class_type]
        if class_type is None and title is None:
            raise WorkflowError("wf.node() needs a class type, a title or an id")
        what = " and ".join(
            part for part in (class_type and f"class {class_type}", title and f'title "{title}"') if part
        )
        return self._single(self.nodes(class_type, title=title), what, 'wf["<id>"]')

    def consumers(self, node_id: str, slot: int | None = None) -> list[tuple[Node, str]]:
        """``(node, input name)`` for every input linked to ``node_id`` (output ``slot`` only, if given)."""
        out = []
        for key, data in self._nodes.items():
            for name, value in data["inputs"].items():
                if is_link(value) and value[0] == node_id and (slot is None or value[1] == slot):
                    out.append((Node(self, key), name))
        return out

    def add_node(
        self, class_type: str, inputs: Mapping[str, Any] | None = None, *, title: str | None = None
    ) -> Node:
        """Add a node under the next free integer id."""
        numeric = [int(k) for k in self._nodes if k.isdigit()]
        node_id = str(max(numeric, default=0) + 1)
        self._nodes[node_id] = {"inputs": dict(inputs or {}), "class_type": class_type}
        if title:
            self._nodes[node_id]["_meta"] = {"title": title}
        return Node(self, node_id)

    def _resolve_path(self, path: str) -> tuple[Node, str]:
        node_ref, sep, name = path.rpartition(".")
        if not sep or not node_ref or not name:
            raise WorkflowError(f"{path!r} is not '<node id>.<input>' (e.g. '3.seed')")
        if node_ref in self._nodes:
            return self[node_ref], name
        candidates = self.nodes(title=node_ref) or self.nodes(node_ref)
        return self._single(candidates, f'id, title or class "{node_ref}"', 'wf.set("<id>.input", ...)'), name

    def set(self, path: str, value: Any) -> None:
        """Set any input by ``"node.input"`` (node = id, title or class); sweeps use this."""
        node, name = self._resolve_path(path)
        self._assign(node, name, value, create=True)

    def get(self, path: str) -> Any:
        node, name = self._resolve_path(path)
        if name not in node.inputs:
            raise WorkflowError(
                f"node {node.describe()} has no input {name!r}; inputs: {', '.join(node.inputs)}"
            )
        return node.inputs[name]

    def remove_node(self, node_id: str) -> None:
        """Remove a node that nothing links to any more."""
        users = self.consumers(node_id)
        if users:
            raise WorkflowError(f"node {self[node_id].describe()} is still used by {self._listing([n for n, _ in users])}")
        del self._nodes[self[node_id].id]

    def _assign(self, node: Node, name: str, value: Any, *, create: bool = False) -> None:
        """Set a constant input; when it is linked to a value node (e.g. a primitive), set it there."""
        if name not in node.inputs and not create:
            raise WorkflowError(
                f"node {node.describe()} has no input {name!r}; inputs: {', '.join(node.inputs)}"
            )
        current = node.inputs.get(name)
        if is_link(current) and not is_link(value) and current[0] in self._nodes:
            source = self[current[0]]
            constants = [k for k, v in source.inputs.items() if not is_link(v)]
            if len(constants) == 1 and len(source.inputs) == 1:
                source.inputs[constants[0]] = value
                return
            if not create:
                raise WorkflowError(
                    f"input {name!r} of node {node.describe()} is linked to node {source.describe()}, which is not "
                    f'a plain value node; set that node instead, or replace the link: wf.set("{node.id}.{name}", ...)'
                )
        node.inputs[name] = {"__value__": value} if isinstance(value, list) and not is_link(value) else value

    @staticmethod
    def _listing(nodes: list[Node]) -> str:
        return "; ".join(n.describe() for n in nodes) or "none"

    def _single(self, candidates: list[Node], what: str, how: str) -> Node:
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise WorkflowError(f"no {what} in this workflow; nodes: {self._listing(self.nodes())}")
        raise WorkflowError(
            f"ambiguous: {len(candidates)} candidates for the {what}: {self._listing(candidates)}; pick one with {how}"
        )
