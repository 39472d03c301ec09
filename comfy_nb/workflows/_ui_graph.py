"""A UI-format (LiteGraph) save loaded the way the ComfyUI frontend 1.27.10 loads it.

Each saved node becomes a ``UiNode`` with the widgets the frontend would create for it (from the server's
node definition) and the saved ``widgets_values`` laid over them. A subgraph instance gets the widgets it
promotes from its definition (``SubgraphNode._internalConfigureAfterSlots``). Definitions are shared by
all their instances, as in the frontend, so one instance's values can show through another's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import WorkflowError
from ..protocol import InputSpec, NodeDef
from ._ui_text import UNDEFINED

__all__ = [
    "BROWSER_STATE_TYPES",
    "PRIMITIVE",
    "SAVE_NODE_TYPES",
    "SUBGRAPH_INPUT",
    "SUBGRAPH_OUTPUT",
    "UiGraph",
    "UiLink",
    "UiNode",
    "UiSlot",
    "Widget",
    "default_title",
    "frontend_input_order",
    "load_graph",
    "widgets_for",
]

SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = -10, -20
REROUTE, PRIMITIVE = "Reroute", "PrimitiveNode"
# Frontend-only node classes: never sent, never looked up in object_info.
VIRTUAL_TYPES = frozenset({REROUTE, PRIMITIVE, "Note", "MarkdownNote"})
# Combo options after which the frontend adds an upload button widget (uploadImage.ts).
_UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
# Saving nodes whose filename_prefix gets %token% replacement (saveImageExtraOutput.ts).
SAVE_NODE_TYPES = frozenset(
    {
        "SaveImage",
        "SaveAnimatedWEBP",
        "SaveWEBM",
        "SaveAudio",
        "SaveGLB",
        "SaveAnimatedPNG",
        "CLIPSave",
        "VAESave",
        "ModelSave",
        "LoraSave",
        "SaveLatent",
    }
)
# Core classes whose object_info has no display_name; the frontend titles them from its own English
# locale (src/locales/en/nodeDefs.json in 1.27.10).
LOCALE_TITLES = {
    "ImageBlend": "Image Blend",
    "ImageBlur": "Image Blur",
    "ImageQuantize": "Image Quantize",
    "ImageSharpen": "Image Sharpen",
    "ImageScaleToTotalPixels": "Scale Image to Total Pixels",
}
# Classes whose frontend extensions add widgets holding browser state (webcamCapture.ts, load3d.ts,
# saveMesh.ts): refused, not guessed.
BROWSER_STATE_TYPES = frozenset(
    {
        "WebcamCapture",
        "Load3D",
        "Load3DAnimation",
        "Preview3D",
        "Preview3DAnimation",
        "SaveGLB",
    }
)
# Classes that get an audio player widget ("audioUI": sent empty, never saved) after their required
# inputs (uploadAudio.ts); a required ``audio`` combo with ``audio_upload`` then gets an upload button.
AUDIO_PLAYER_TYPES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
SEARCH_NAME = "Node name for S&R"


@dataclass(eq=False)
class Widget:
    name: str
    value: Any
    sent: bool = True
    """False for the frontend's helper widgets (``control_after_generate``, upload buttons): stored, never sent."""
    stored: bool = True
    """False for widgets that take no ``widgets_values`` slot (PreviewAny's ``preview``)."""
    dynamic_prompts: bool = False


@dataclass(frozen=True)
class UiSlot:
    name: str
    type: Any
    link: Any = None
    widget: str | None = None
    """The widget this input feeds (``input.widget.name``), if it is a widget input."""


@dataclass(frozen=True)
class UiLink:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any


@dataclass(eq=False)
class UiNode:
    id: Any
    type: str
    mode: int
    title: str
    inputs: list[UiSlot]
    outputs: list[tuple[Any, list[Any]]]
    """``(type, link ids)`` per output."""
    properties: dict[str, Any]
    widgets: list[Widget]
    graph: UiGraph
    node_def: NodeDef | None = None
    subgraph: UiGraph | None = None
    """The definition, for a subgraph instance."""
    saved: Mapping[str, Any] = field(default_factory=dict)

    @property
    def virtual(self) -> bool:
        return self.subgraph is not None or self.type in VIRTUAL_TYPES

    @property
    def search_name(self) -> str | None:
        name = self.properties.get(SEARCH_NAME)
        return name if isinstance(name, str) else None

    def widget(self, name: str) -> Widget | None:
        return next((w for w in self.widgets if w.name == name), None)

    def input_widget(self, index: int) -> Widget | None:
        """``getWidgetFromSlot``: the widget input ``index`` feeds. A subgraph instance's promoted widget
        carries its input's name (``SubgraphNode.#setWidget``)."""
        if index >= len(self.inputs):
            return None
        slot = self.inputs[index]
        if self.subgraph is not None:
            return self.widget(slot.name)
        return self.widget(slot.widget) if slot.widget else None

    def widget_value(self, name: str) -> tuple[bool, Any]:
        found = self.widget(name)
        return (False, None) if found is None else (True, found.value)

    def describe(self, execution_id: str | None = None) -> str:
        """``node 5:2 (ImageBlur, "Soft")``; without an execution id, inner nodes name their subgraph."""
        title = self.saved.get("title")
        text = f"node {self.id if execution_id is None else execution_id} ({self.type}"
        text += f', "{title}")' if title else ")"
        if execution_id is None and self.graph.id is not None:
            text += f" in subgraph {self.graph.name!r}"
        return text


@dataclass(eq=False)
class UiGraph:
    """The root graph or one subgraph definition."""

    nodes: dict[Any, UiNode]
    links: dict[Any, UiLink]
    id: str | None = None
    name: str = ""
    inputs: list[UiSlot] = field(default_factory=list)
    """Subgraph inputs (``link`` unused)."""
    input_links: list[list[Any]] = field(default_factory=list)
    """Per subgraph input, the inner links leaving it."""
    outputs: list[tuple[Any, list[Any]]] = field(default_factory=list)
    """Subgraph outputs: ``(type, inner link ids into it)``."""

    def input_link_ids(self, name: str) -> list[Any]:
        """``SubgraphInput.linkIds`` of the input called ``name``."""
        index = next((i for i, slot in enumerate(self.inputs) if slot.name == name), None)
        return [] if index is None else self.input_links[index]

    definitions: list[UiGraph] = field(default_factory=list)
    """At the root: every subgraph definition, in saved order (the order the frontend configures them)."""

    def link_of(self, node: UiNode, slot: int) -> UiLink | None:
        if slot >= len(node.inputs) or node.inputs[slot].link is None:
            return None
        return self.links.get(node.inputs[slot].link)

    def walk(self) -> Iterator[UiNode]:
        """Every node as ``collectAllNodes`` lists them: a subgraph's nodes just before its instance."""
        for node in self.nodes.values():
            if node.subgraph is not None:
                yield from node.subgraph.walk()
            yield node


def load_graph(workflow: Mapping[str, Any], defs: Mapping[str, NodeDef]) -> UiGraph:
    """Load the root graph and every subgraph definition; raises ``WorkflowError`` on malformed saves."""
    raw_defs: dict[str, Mapping[str, Any]] = {}
    for item in (workflow.get("definitions") or {}).get("subgraphs") or []:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            raw_defs[item["id"]] = item
    loader = _Loader(defs, raw_defs, workflow)
    loader.root.definitions = list(loader.graphs.values())
    return loader.root


class _Loader:
    def __init__(
        self, defs: Mapping[str, NodeDef], raw_defs: dict[str, Mapping[str, Any]], workflow: Mapping[str, Any]
    ) -> None:
        self.defs = defs
        self.raw_defs = raw_defs
        self.graphs: dict[str, UiGraph] = {}
        self.pending: list[UiNode] = []
        for sub_id, raw in raw_defs.items():
            self.graphs[sub_id] = _empty_graph(raw, sub_id)
        for sub_id, raw in raw_defs.items():
            self._fill(self.graphs[sub_id], raw)
        self.root = _empty_graph(workflow, None)
        self._fill(self.root, workflow)
        done: set[int] = set()
        for node in self.pending:
            self._promote(node, done, ())

    def _fill(self, graph: UiGraph, raw: Mapping[str, Any]) -> None:
        for item in raw.get("nodes") or []:
            if isinstance(item, Mapping) and "id" in item:
                node = self._node(graph, item)
                graph.nodes[node.id] = node

    def _node(self, graph: UiGraph, raw: Mapping[str, Any]) -> UiNode:
        kind = raw.get("type")
        kind = kind if isinstance(kind, str) else str(kind)
        inputs = [_slot(i) for i in raw.get("inputs") or [] if isinstance(i, Mapping)]
        outputs = [
            (o.get("type"), [link for link in o.get("links") or [] if link is not None])
            for o in raw.get("outputs") or []
            if isinstance(o, Mapping)
        ]
        properties = dict(raw.get("properties") or {}) if isinstance(raw.get("properties"), Mapping) else {}
        mode = raw.get("mode")
        mode = mode if isinstance(mode, int) else 0
        node = UiNode(raw["id"], kind, mode, "", inputs, outputs, properties, [], graph, saved=raw)
        node_def = self.defs.get(kind)
        if kind in self.graphs:
            node.subgraph = self.graphs[kind]
            # SubgraphNode.configure: slots from the definition, the saved ones laid over them by index.
            node.inputs = inputs + node.subgraph.inputs[len(inputs) :]
            node.outputs = outputs + [(t, []) for t, _ in node.subgraph.outputs[len(outputs) :]]
            node.title = raw.get("title") or node.subgraph.name
            self.pending.append(node)
            return node
        if kind == PRIMITIVE:
            values = raw.get("widgets_values")
            if node.outputs and node.outputs[0][1] and isinstance(values, list) and values:
                node.widgets = [Widget("value", values[0])]
            node.title = raw.get("title") or "Primitive"
            return node
        if node_def is None:
            node.title = raw.get("title") or kind
            return node
        node.node_def = node_def
        node.title = raw.get("title") or default_title(node_def)
        if SEARCH_NAME not in properties and kind not in SAVE_NODE_TYPES:
            properties[SEARCH_NAME] = kind
        node.inputs = frontend_input_order(node.inputs, node_def)
        node.widgets = widgets_for(node_def)
        self._apply_values(node, raw.get("widgets_values"))
        return node

    def _apply_values(self, node: UiNode, stored: Any) -> None:
        if isinstance(stored, Mapping):  # some saves key the values by widget name
            for widget in node.widgets:
                if widget.name in stored:
                    widget.value = stored[widget.name]
            return
        values = list(stored or []) if isinstance(stored, list) else []
        slots = [w for w in node.widgets if w.stored]
        # Surplus values (a widget an old frontend or an API node's result box added) are dropped, as
        # LGraphNode.configure drops them.
        for widget, value in zip(slots, values, strict=False):
            widget.value = value

    def _promote(self, node: UiNode, done: set[int], stack: tuple[str, ...]) -> None:
        """The widgets a subgraph instance shows: per instance input, the first inner widget its links reach."""
        if id(node) in done:
            return
        assert node.subgraph is not None
        sub = node.subgraph
        if sub.id in stack:
            raise WorkflowError(f"{node.describe()}: subgraph {sub.name!r} contains itself")
        for inner in sub.nodes.values():
            if inner.subgraph is not None:
                self._promote(inner, done, (*stack, str(sub.id)))
        widgets: list[Widget] = []
        for slot in node.inputs:
            for link_id in sub.input_link_ids(slot.name):
                link = sub.links.get(link_id)
                target = sub.nodes.get(link.target_id) if link is not None else None
                inner_widget = target.input_widget(link.target_slot) if target and link else None
                if inner_widget is not None:
                    widgets.append(Widget(slot.name, inner_widget.value, dynamic_prompts=False))
                    break
        node.widgets = widgets
        stored = node.saved.get("widgets_values")
        if self._configured_later(node):
            # The frontend configures definitions in saved order; an instance whose definition comes
            # later than the one it sits in finds no widgets yet, so its saved values are dropped.
            stored = None
        if isinstance(stored, list):
            for widget, value in zip(widgets, stored, strict=False):
                widget.value = value
        done.add(id(node))

    def _configured_later(self, node: UiNode) -> bool:
        order = list(self.graphs.values())
        if node.graph not in order or node.subgraph not in order:
            return False
        assert node.subgraph is not None
        return order.index(node.subgraph) > order.index(node.graph)


def _empty_graph(raw: Mapping[str, Any], graph_id: str | None) -> UiGraph:
    links: dict[Any, UiLink] = {}
    for link in raw.get("links") or []:
        parsed = _link(link)
        if parsed is not None:
            links[parsed.id] = parsed
    graph = UiGraph({}, links, graph_id, str(raw.get("name") or ""))
    if graph_id is None:
        return graph
    for index, item in enumerate(raw.get("inputs") or []):
        item = item if isinstance(item, Mapping) else {}
        ids = item.get("linkIds")
        if ids is None:  # older saves: recover them from the links leaving the input node
            ids = [k for k, v in links.items() if v.origin_id == SUBGRAPH_INPUT and v.origin_slot == index]
        graph.inputs.append(UiSlot(str(item.get("name")), item.get("type")))
        graph.input_links.append(list(ids))
    for index, item in enumerate(raw.get("outputs") or []):
        item = item if isinstance(item, Mapping) else {}
        ids = item.get("linkIds")
        if ids is None:
            ids = [k for k, v in links.items() if v.target_id == SUBGRAPH_OUTPUT and v.target_slot == index]
        graph.outputs.append((item.get("type"), list(ids)))
    return graph


def _slot(raw: Mapping[str, Any]) -> UiSlot:
    widget = raw.get("widget")
    name = widget.get("name") if isinstance(widget, Mapping) else None
    return UiSlot(
        str(raw.get("name")), raw.get("type"), raw.get("link"), name if isinstance(name, str) else None
    )


def _link(raw: Any) -> UiLink | None:
    if isinstance(raw, list) and len(raw) >= 6:
        return UiLink(raw[0], raw[1], int(raw[2]), raw[3], int(raw[4]), raw[5])
    if isinstance(raw, Mapping) and "id" in raw:
        return UiLink(
            raw["id"],
            raw.get("origin_id"),
            int(raw.get("origin_slot") or 0),
            raw.get("target_id"),
            int(raw.get("target_slot") or 0),
            raw.get("type"),
        )
    return None


def widgets_for(node_def: NodeDef) -> list[Widget]:
    """The widgets the frontend creates for a node class, helpers included, in ``widgets_values`` order."""
    widgets: list[Widget] = []
    specs = node_def.widget_inputs
    required = [s for s in specs if s.section == "required"]
    for spec in required:
        widgets += _widget_with_helpers(spec)
    widgets += _audio_widgets(node_def)  # uploadAudio.ts adds them as required inputs
    for spec in specs[len(required) :]:
        widgets += _widget_with_helpers(spec)
    if any(spec.config.get(k) is True for spec in specs for k in _UPLOAD_OPTIONS):
        # added by the upload extension once the node exists, so after every input widget
        widgets.append(Widget("upload", "image", sent=False))
    if node_def.name == "PreviewAny":  # its preview text box is sent (empty) but never saved
        widgets.append(Widget("preview", "", stored=False))
    return widgets


def _widget_with_helpers(spec: InputSpec) -> list[Widget]:
    """One input's widget, then the helper widgets the frontend puts right after it."""
    widgets = [Widget(spec.name, _default(spec), dynamic_prompts=_dynamic(spec))]
    remote = spec.config.get("remote") if spec.type == "COMBO" else None
    if isinstance(remote, Mapping):  # useRemoteWidget: an unsent auto-refresh toggle, a sent button
        widgets.append(Widget("Auto-refresh after generation", False, sent=False))
        if remote.get("refresh_button"):
            widgets.append(Widget("refresh", "refresh"))
    if _has_control(spec):
        widgets.append(
            Widget("control_after_generate", "randomize" if spec.type == "INT" else "fixed", sent=False)
        )
        if spec.type == "COMBO":
            widgets.append(Widget("control_filter_list", "", sent=False))
    return widgets


def _audio_widgets(node_def: NodeDef) -> list[Widget]:
    """The player (and upload button) uploadAudio.ts appends to the required inputs of audio nodes."""
    if node_def.name not in AUDIO_PLAYER_TYPES:
        return []
    widgets = [Widget("audioUI", "", stored=False)]
    audio = node_def.inputs.get("audio")
    if audio is not None and audio.section == "required" and audio.config.get("audio_upload") is True:
        widgets.append(Widget("upload", "", sent=False))
    return widgets


def _default(spec: InputSpec) -> Any:
    """A widget's value before ``widgets_values`` is applied (``use*Widget`` composables)."""
    default = spec.config.get("default")
    if spec.type in ("INT", "FLOAT"):
        return 0 if default is None else default
    if spec.type == "STRING":
        return "" if default is None else default
    if spec.type == "BOOLEAN":
        return False if default is None else default
    if default:
        return default
    options = spec.options or spec.config.get("options") or []
    return options[0] if options else UNDEFINED


def default_title(node_def: NodeDef) -> str:
    """The title a node has until renamed: object_info's display name, else the frontend locale's."""
    if node_def.display_name and node_def.display_name != node_def.name:
        return node_def.display_name
    return LOCALE_TITLES.get(node_def.name, node_def.name)


def frontend_input_order(saved: list[UiSlot], node_def: NodeDef) -> list[UiSlot]:
    """The frontend builds a node's inputs from its definition, sockets first, then widget inputs, and
    matches the saved slots to them by name; saved slots it does not know stay after them."""
    by_name = {slot.name: slot for slot in saved}
    specs = [s for s in node_def.inputs.values() if s.section != "hidden"]
    ordered = [s.name for s in specs if not s.is_widget] + [s.name for s in specs if s.is_widget]
    known = [by_name[name] for name in ordered if name in by_name]
    return known + [slot for slot in saved if slot.name not in ordered]


def _has_control(spec: InputSpec) -> bool:
    """``useIntWidget``/``useComboWidget``: the spec's flag, or (ints only) the legacy seed names."""
    if "control_after_generate" in spec.config:
        return bool(spec.config["control_after_generate"])
    return spec.type == "INT" and spec.name in ("seed", "noise_seed")


def _dynamic(spec: InputSpec) -> bool:
    return spec.type == "STRING" and spec.config.get("dynamicPrompts") is True
