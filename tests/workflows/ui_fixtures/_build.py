"""Writes the hand-built UI workflows in this folder, shaped the way the frontend 1.27.10 saves them.

Run ``python tests/workflows/ui_fixtures/_build.py`` (``COMFY_NB_FIXTURES`` as for the tests) to rewrite
the ``*.json`` inputs; the matching ``*.frontend_api.json`` files are the real frontend's conversions of
them (see README.md).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OBJECT_INFO: dict[str, Any] = {}
_SUB_INPUT, _SUB_OUTPUT = -10, -20


def _object_info() -> dict[str, Any]:
    """The captured object_info (``$COMFY_NB_FIXTURES`` or ``../shared`` beside the project) plus the extras."""
    if not OBJECT_INFO:
        fixtures = Path(os.environ.get("COMFY_NB_FIXTURES", HERE.parents[3] / "shared/fixtures/comfyui"))
        OBJECT_INFO.update(json.loads((fixtures / "object_info.json").read_text()))
        OBJECT_INFO.update(json.loads((HERE / "extra_object_info.json").read_text()))
    return OBJECT_INFO


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfy_nb/ui_fixtures/{name}"))


class Graph:
    """Nodes and links of one graph level; ``subgraph=True`` stores links as objects, as definitions do."""

    def __init__(self, *, subgraph: bool = False, first_link: int = 1) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[Any] = []
        self.subgraph = subgraph
        self.next_link = first_link
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []

    def node(
        self,
        node_id: int,
        kind: str,
        widgets_values: Any = None,
        *,
        mode: int = 0,
        title: str | None = None,
        properties: dict[str, Any] | None = None,
        inputs: list[tuple[str, str]] | None = None,
        outputs: list[str] | None = None,
    ) -> dict[str, Any]:
        """A node of a server class (slots from object_info) or, with inputs/outputs given, any other."""
        info = _object_info().get(kind)
        slots: list[dict[str, Any]] = []
        if info is not None and inputs is None:
            sockets: list[dict[str, Any]] = []
            for section in ("required", "optional"):
                for name, spec in (info["input"].get(section) or {}).items():
                    kind_name = spec[0] if isinstance(spec[0], str) else "COMBO"
                    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                    slot: dict[str, Any] = {"localized_name": name, "name": name, "type": kind_name}
                    if kind_name in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO") and not opts.get(
                        "forceInput"
                    ):
                        slot["widget"] = {"name": name}
                        slot["link"] = None
                        slots.append(slot)
                    else:
                        slot["link"] = None
                        sockets.append(slot)
            slots = sockets + slots  # the frontend lists socket inputs first, then widget inputs
            out_types = list(info["output"])
            out_names = list(info.get("output_name") or out_types)
        else:
            slots = [{"name": n, "type": t, "link": None} for n, t in inputs or []]
            out_types = list(outputs or [])
            out_names = list(out_types)
        node: dict[str, Any] = {
            "id": node_id,
            "type": kind,
            "pos": [100.0 * len(self.nodes), 100.0],
            "size": [270, 120],
            "flags": {},
            "order": len(self.nodes),
            "mode": mode,
            "inputs": slots,
            "outputs": [
                {"localized_name": n, "name": n, "type": t, "links": []} for n, t in zip(out_names, out_types, strict=True)
            ],
            "properties": {"Node name for S&R": kind} if properties is None else properties,
        }
        if title is not None:
            node["title"] = title
        if widgets_values is not None:
            node["widgets_values"] = widgets_values
        self.nodes.append(node)
        return node

    def _find(self, node_id: int) -> dict[str, Any]:
        return next(n for n in self.nodes if n["id"] == node_id)

    def connect(self, origin: int, origin_slot: int, target: int, target_input: str | int, kind: str) -> int:
        link_id = self.next_link
        self.next_link += 1
        if origin == _SUB_INPUT:
            self.inputs[origin_slot]["linkIds"].append(link_id)
        else:
            self._find(origin)["outputs"][origin_slot]["links"].append(link_id)
        if target == _SUB_OUTPUT:
            assert isinstance(target_input, int)
            slot = target_input
            self.outputs[slot]["linkIds"].append(link_id)
        else:
            slots = self._find(target)["inputs"]
            slot = (
                target_input
                if isinstance(target_input, int)
                else next(i for i, s in enumerate(slots) if s["name"] == target_input)
            )
            slots[slot]["link"] = link_id
        if self.subgraph:
            self.links.append(
                {
                    "id": link_id,
                    "origin_id": origin,
                    "origin_slot": origin_slot,
                    "target_id": target,
                    "target_slot": slot,
                    "type": kind,
                }
            )
        else:
            self.links.append([link_id, origin, origin_slot, target, slot, kind])
        return link_id

    def sub_input(self, name: str, kind: str) -> int:
        self.inputs.append(
            {
                "id": _uid(f"in/{name}/{len(self.inputs)}"),
                "name": name,
                "type": kind,
                "linkIds": [],
                "pos": [0, 0],
            }
        )
        return len(self.inputs) - 1

    def sub_output(self, name: str, kind: str) -> int:
        self.outputs.append(
            {
                "id": _uid(f"out/{name}/{len(self.outputs)}"),
                "name": name,
                "type": kind,
                "linkIds": [],
                "pos": [0, 0],
            }
        )
        return len(self.outputs) - 1

    def definition(self, name: str) -> dict[str, Any]:
        return {
            "id": _uid(name),
            "version": 1,
            "state": {
                "lastGroupId": 0,
                "lastNodeId": max((n["id"] for n in self.nodes), default=0),
                "lastLinkId": self.next_link - 1,
                "lastRerouteId": 0,
            },
            "revision": 0,
            "config": {},
            "name": name,
            "inputNode": {"id": _SUB_INPUT, "bounding": [-300, 0, 120, 100]},
            "outputNode": {"id": _SUB_OUTPUT, "bounding": [900, 0, 120, 100]},
            "inputs": self.inputs,
            "outputs": self.outputs,
            "widgets": [],
            "nodes": self.nodes,
            "groups": [],
            "links": self.links,
            "extra": {},
        }


def instance(
    graph: Graph,
    node_id: int,
    definition: dict[str, Any],
    widgets_values: list[Any] | None,
    *,
    promoted: tuple[str, ...] = (),
    mode: int = 0,
    title: str | None = None,
) -> dict[str, Any]:
    """A node of a subgraph: one input per subgraph input (``widget`` on the promoted ones)."""
    inputs = []
    for item in definition["inputs"]:
        slot: dict[str, Any] = {"localized_name": item["name"], "name": item["name"], "type": item["type"]}
        if item["name"] in promoted:
            slot["widget"] = {"name": item["name"]}
        slot["link"] = None
        inputs.append(slot)
    node = graph.node(
        node_id,
        definition["id"],
        widgets_values,
        mode=mode,
        title=title,
        properties={},
        inputs=[],
        outputs=[],
    )
    node["inputs"] = inputs
    node["outputs"] = [
        {"localized_name": o["name"], "name": o["name"], "type": o["type"], "links": []}
        for o in definition["outputs"]
    ]
    return node


def workflow(
    graph: Graph,
    subgraphs: list[dict[str, Any]] | None = None,
    harness: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A 0.4 save; ``harness`` (top-level ``_harness``) fixes Math.random / the clock for the real frontend."""
    data: dict[str, Any] = {
        "id": _uid("workflow/" + json.dumps([n["id"] for n in graph.nodes])),
        "revision": 0,
        "last_node_id": max(n["id"] for n in graph.nodes),
        "last_link_id": graph.next_link - 1,
        "nodes": graph.nodes,
        "links": graph.links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "frontendVersion": "1.27.10", **extra},
        "version": 0.4,
    }
    if subgraphs:
        data["definitions"] = {"subgraphs": subgraphs}
    if harness:
        data["_harness"] = harness
    return data


# -- the fixtures ------------------------------------------------------------------------------------


def blur_subgraph(name: str = "invert and blur") -> dict[str, Any]:
    """image → ImageInvert → ImageBlur → image, with blur_radius and sigma as subgraph inputs."""
    sub = Graph(subgraph=True, first_link=100)
    image = sub.sub_input("image", "IMAGE")
    radius = sub.sub_input("blur_radius", "INT")
    sigma = sub.sub_input("sigma", "FLOAT")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(1, "ImageInvert")
    sub.node(2, "ImageBlur", [3, 1.0])
    sub.connect(_SUB_INPUT, image, 1, "image", "IMAGE")
    sub.connect(1, 0, 2, "image", "IMAGE")
    sub.connect(_SUB_INPUT, radius, 2, "blur_radius", "INT")
    sub.connect(_SUB_INPUT, sigma, 2, "sigma", "FLOAT")
    sub.connect(2, 0, _SUB_OUTPUT, out, "IMAGE")
    return sub.definition(name)


def subgraph_promoted() -> dict[str, Any]:
    """Two instances of one subgraph: promoted values win over the inner node's; a link wins over both;
    an instance without widgets_values keeps the inner values."""
    definition = blur_subgraph()
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    instance(g, 5, definition, [7, 2.5], promoted=("blur_radius", "sigma"), title="first blur")
    instance(g, 6, definition, [9, 0.5], promoted=("blur_radius", "sigma"))
    instance(g, 8, definition, None, promoted=("blur_radius", "sigma"))
    g.node(2, "PrimitiveInt", [11, "fixed"])
    g.node(3, "SaveImage", ["promoted"])
    g.connect(1, 0, 5, "image", "IMAGE")
    g.connect(5, 0, 6, "image", "IMAGE")
    g.connect(2, 0, 6, "blur_radius", "INT")
    g.connect(6, 0, 8, "image", "IMAGE")
    g.connect(8, 0, 3, "images", "IMAGE")
    return workflow(g, [definition])


def audio_nodes() -> dict[str, Any]:
    """Audio nodes (classes from ``extra_object_info.json``): a player widget sent empty, an upload button."""
    g = Graph()
    g.node(1, "LoadAudio", ["b.flac", None, None])
    g.node(2, "SaveAudio", ["audio/%date:yyyy%"])
    g.node(3, "PreviewAudio", [])
    g.node(4, "SaveAudioMP3", ["mp3/%date:yyyy%", "320k"])
    g.node(5, "SaveAudioOpus", ["opus/x"])
    for target in (2, 3, 4, 5):
        g.connect(1, 0, target, "audio", "AUDIO")
    return workflow(g, harness={"now": [2026, 1, 2, 3, 4, 5]})


def subgraph_short_instance() -> dict[str, Any]:
    """An instance saved with fewer slots than its definition has inputs (official templates have them):
    the definition's slots fill in and their promoted widgets still take the saved values."""
    definition = blur_subgraph()
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    node = instance(g, 5, definition, [6, 1.25], promoted=("blur_radius", "sigma"))
    node["inputs"] = node["inputs"][:1]
    g.node(3, "PreviewImage")
    g.connect(1, 0, 5, "image", "IMAGE")
    g.connect(5, 0, 3, "images", "IMAGE")
    return workflow(g, [definition])


def subgraph_primitive_and_tokens() -> dict[str, Any]:
    """A PrimitiveNode feeding an instance's promoted widget, and filename tokens that read widgets inside
    a subgraph definition shared by two instances (the last instance saved wins) and on an instance."""
    definition = blur_subgraph()
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    g.node(
        2,
        "PrimitiveNode",
        [21, "fixed"],
        inputs=[],
        outputs=["INT"],
        properties={"Run widget replace on values": False},
    )
    g.nodes[-1]["outputs"][0].update(widget={"name": "blur_radius"})
    instance(g, 5, definition, [7, 2.5], promoted=("blur_radius", "sigma"), title="first blur")
    instance(g, 6, definition, [9, 0.5], promoted=("blur_radius", "sigma"))
    g.node(
        3,
        "SaveImage",
        ["%ImageBlur.blur_radius%_%Image Blur.sigma%_%first blur.sigma%_%first blur.blur_radius%"],
    )
    g.connect(1, 0, 5, "image", "IMAGE")
    g.connect(2, 0, 5, "blur_radius", "INT")
    g.connect(5, 0, 6, "image", "IMAGE")
    g.connect(6, 0, 3, "images", "IMAGE")
    return workflow(g, [definition])


def nested_subgraph(inner_first: bool = True) -> dict[str, Any]:
    """A subgraph holding an instance of another; the outer instance promotes the inner one's widget.
    Saved inner definition first (as the frontend saves nests it built), or outer first."""
    inner = blur_subgraph("inner blur")
    outer = Graph(subgraph=True, first_link=200)
    image = outer.sub_input("image", "IMAGE")
    radius = outer.sub_input("blur_radius", "INT")
    out = outer.sub_output("IMAGE", "IMAGE")
    outer.node(3, "ImageInvert")
    instance(outer, 4, inner, [4, 0.75], promoted=("blur_radius", "sigma"))
    outer.connect(_SUB_INPUT, image, 3, "image", "IMAGE")
    outer.connect(3, 0, 4, "image", "IMAGE")
    outer.connect(_SUB_INPUT, radius, 4, "blur_radius", "INT")
    outer.connect(4, 0, _SUB_OUTPUT, out, "IMAGE")
    outer_def = outer.definition("outer")
    g = Graph()
    g.node(1, "EmptyImage", [32, 32, 1, 255])
    instance(g, 10, outer_def, [13], promoted=("blur_radius",))
    g.node(2, "PreviewImage")
    g.connect(1, 0, 10, "image", "IMAGE")
    g.connect(10, 0, 2, "images", "IMAGE")
    return workflow(g, [inner, outer_def] if inner_first else [outer_def, inner])


def promoted_widget_kinds() -> dict[str, Any]:
    """Which inner widgets an instance can promote: numbers, combos, booleans, one-line and multiline text."""
    sub = Graph(subgraph=True, first_link=500)
    image = sub.sub_input("image", "IMAGE")
    names = [
        ("upscale_method", "COMBO", 2),
        ("width", "INT", 2),
        ("seed", "INT", 3),
        ("resize_source", "BOOLEAN", 4),
        ("delimiter", "STRING", 5),
        ("string_a", "STRING", 5),
        ("text", "STRING", 6),
    ]
    slots = {name: sub.sub_input(name, kind) for name, kind, _ in names}
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(2, "ImageScale", ["nearest-exact", 64, 64, "disabled"])
    sub.node(3, "ImageAddNoise", [1, "fixed", 0.5])
    sub.node(4, "ImageCompositeMasked", [0, 0, False])
    sub.node(5, "StringConcatenate", ["inner a", "inner b", "-"])
    sub.node(6, "CLIPTextEncode", ["inner text"])
    sub.connect(_SUB_INPUT, image, 2, "image", "IMAGE")
    sub.connect(2, 0, 3, "image", "IMAGE")
    sub.connect(3, 0, 4, "destination", "IMAGE")
    sub.connect(2, 0, 4, "source", "IMAGE")
    for name, kind, target in names:
        sub.connect(_SUB_INPUT, slots[name], target, name, kind)
    sub.connect(4, 0, _SUB_OUTPUT, out, "IMAGE")
    definition = sub.definition("kinds")
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    promoted = tuple(name for name, _, _ in names)
    instance(g, 7, definition, ["bilinear", 32, 99, True, "+", "outer a", "outer text"], promoted=promoted)
    g.node(8, "PreviewImage")
    g.connect(1, 0, 7, "image", "IMAGE")
    g.connect(7, 0, 8, "images", "IMAGE")
    return workflow(g, [definition])


def dynamic_prompts() -> dict[str, Any]:
    """dynamicPrompts text: comments, nested choices, escapes; a plain STRING widget is left alone;
    a promoted dynamic text is sent as written (the frontend sends the instance's raw value)."""
    sub = Graph(subgraph=True, first_link=100)
    text = sub.sub_input("text", "STRING")
    out = sub.sub_output("CONDITIONING", "CONDITIONING")
    sub.node(1, "CLIPTextEncode", ["inner {a|b}"])
    sub.connect(_SUB_INPUT, text, 1, "text", "STRING")
    sub.connect(1, 0, _SUB_OUTPUT, out, "CONDITIONING")
    definition = sub.definition("encode")
    g = Graph()
    g.node(
        1,
        "CLIPTextEncode",
        [
            (
                "a {red|green|blue} cat // not this\n"
                "/* nor\nthis */on a {big {old|new}|small} mat, \\{literal\\} and \\| bar, {x|}{|y}{only}"
            )
        ],
    )
    g.node(2, "CLIPTextEncode", ["{one|two|three} and {four|five}"], title="Second")
    g.node(3, "StringConcatenate", ["{not|chosen}", "b", "//kept"])
    instance(g, 4, definition, ["{promoted|raw}"], promoted=("text",))
    return workflow(
        g, [definition], harness={"random": [0.5, 0.99, 0.0, 0.6, 0.2, 0.0, 0.4, 0.34, 0.7, 0.9], "draws": 8}
    )


def filename_tokens() -> dict[str, Any]:
    """%date:...% tokens and %Node.widget% lookups by S&R name, then title, with unsafe characters replaced."""
    g = Graph()
    g.node(1, "EmptyImage", [640, 480, 1, 0], title="Canvas")
    g.node(2, "ImageBlur", [5, 1.0], title="Soft")
    g.node(3, "StringConcatenate", ['a/b:c*d?"e|f<g>', "x", "-"], properties={"Node name for S&R": "Joiner"})
    g.node(
        4,
        "SaveImage",
        [
            (
                "%date:yyyy-MM-dd%/%EmptyImage.width%x%Canvas.height%_%Soft.sigma%_%Joiner.string_a%"
                "_%date:hh-mm-ss%_%date:yy.M.d%_%date:d.M.yyyy%_%Nobody.width%_%EmptyImage.nope%_%width%_%date:yyy%"
            )
        ],
    )
    g.node(5, "PreviewImage")
    g.node(
        6,
        "SaveImage",
        ["%date:yyyyMMdd%/plain_%date:d-M-yy h:m:s%_%date:MMMM dddd%"],
        title="Second save",
        properties={},
    )
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 4, "images", "IMAGE")
    g.connect(2, 0, 5, "images", "IMAGE")
    g.connect(1, 0, 6, "images", "IMAGE")
    return workflow(g, harness={"now": [2026, 3, 7, 9, 5, 2]})


def muted_and_bypassed() -> dict[str, Any]:
    """Bypass passes the first input of the consumer's type; muted sources delete the consumer's input."""
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    g.node(2, "SolidMask", [1.0, 64, 64])
    g.node(3, "JoinImageWithAlpha", mode=4)  # bypassed: IMAGE passes from input 0
    g.node(4, "MaskToImage", mode=4)  # bypassed: no IMAGE input, so its consumer gets nothing
    g.node(5, "ImageBatch")
    g.node(6, "ImageInvert", mode=2)  # muted
    g.node(7, "ImageCompositeMasked", [0, 0, False])
    g.node(8, "PrimitiveInt", [12, "fixed"], mode=2)  # muted source of a widget input
    g.node(9, "SaveImage", ["bypass"])
    g.connect(1, 0, 3, "image", "IMAGE")
    g.connect(2, 0, 3, "alpha", "MASK")
    g.connect(2, 0, 4, "mask", "MASK")
    g.connect(3, 0, 5, "image1", "IMAGE")
    g.connect(4, 0, 5, "image2", "IMAGE")
    g.connect(1, 0, 6, "image", "IMAGE")
    g.connect(5, 0, 7, "destination", "IMAGE")
    g.connect(6, 0, 7, "source", "IMAGE")
    g.connect(8, 0, 7, "x", "INT")
    g.connect(2, 0, 7, "mask", "MASK")
    g.connect(7, 0, 9, "images", "IMAGE")
    return workflow(g)


def bypass_types() -> dict[str, Any]:
    """Bypass picks by the consumer's type: a second output with no input of its type gives nothing,
    a ``*`` consumer takes the same slot, a MASK consumer of a bypassed mask node takes the MASK input."""
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    g.node(2, "SplitImageWithAlpha", mode=4)
    g.node(3, "JoinImageWithAlpha")
    g.node(4, "ImageInvert", mode=4)
    g.node(5, "PreviewAny")
    g.node(6, "SolidMask", [0.5, 64, 64])
    g.node(7, "ImageCompositeMasked", [1, 2, True], mode=4)
    g.node(8, "MaskToImage")
    g.node(9, "PreviewImage")
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 3, "image", "IMAGE")
    g.connect(2, 1, 3, "alpha", "MASK")
    g.connect(3, 0, 4, "image", "IMAGE")
    g.connect(4, 0, 5, "source", "*")
    g.connect(1, 0, 7, "destination", "IMAGE")
    g.connect(1, 0, 7, "source", "IMAGE")
    g.connect(6, 0, 7, "mask", "MASK")
    g.connect(7, 0, 8, "mask", "MASK")
    g.connect(8, 0, 9, "images", "IMAGE")
    return workflow(g)


def dynamic_prompt_edges() -> dict[str, Any]:
    """Escapes inside choices, empty and unclosed blocks, a stray closing brace, line-separator comments
    and a trailing backslash (the frontend appends "undefined" there)."""
    g = Graph()
    texts = [
        r"{a\|b|c} {\{x\}|y} {} {only} }stray| {unclosed|block",
        "keep // cut\u2028kept? {p|q}",
        "tail\\",
        "{{a|b}|{c|{d|e}}} /* {x|y} */ {|}",
    ]
    for node_id, text in enumerate(texts, start=1):
        g.node(node_id, "CLIPTextEncode", [text])
    return workflow(
        g, harness={"random": [0.7, 0.1, 0.5, 0.99, 0.0, 0.6, 0.3, 0.9, 0.45, 0.2, 0.8, 0.05], "draws": 9}
    )


def subgraph_modes() -> dict[str, Any]:
    """A bypassed instance passes its input through (its inner nodes are still sent); a muted instance
    changes nothing (only its inner nodes' own modes count); a muted node inside a subgraph is dropped."""
    definition = blur_subgraph()
    sub = Graph(subgraph=True, first_link=300)
    image = sub.sub_input("image", "IMAGE")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(1, "ImageInvert", mode=2)
    sub.connect(_SUB_INPUT, image, 1, "image", "IMAGE")
    sub.connect(1, 0, _SUB_OUTPUT, out, "IMAGE")
    muted_inside = sub.definition("muted inside")
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    instance(g, 5, definition, [7, 2.5], promoted=("blur_radius", "sigma"), mode=4)
    instance(g, 6, muted_inside, [])
    instance(g, 7, definition, [4, 0.5], promoted=("blur_radius", "sigma"), mode=2)
    g.node(2, "SaveImage", ["a"])
    g.node(3, "SaveImage", ["b"])
    g.node(4, "SaveImage", ["c"])
    g.connect(1, 0, 5, "image", "IMAGE")
    g.connect(5, 0, 2, "images", "IMAGE")
    g.connect(1, 0, 6, "image", "IMAGE")
    g.connect(6, 0, 3, "images", "IMAGE")
    g.connect(1, 0, 7, "image", "IMAGE")
    g.connect(7, 0, 4, "images", "IMAGE")
    return workflow(g, [definition, muted_inside])


def primitives_and_reroutes() -> dict[str, Any]:
    """A PrimitiveNode feeding two widgets, one through a Reroute (not applied there), legacy Reroute
    chains, a native reroute on a link, a Reroute into a bypassed node, and a Reroute inside a subgraph."""
    sub = Graph(subgraph=True, first_link=400)
    image = sub.sub_input("image", "IMAGE")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(1, "Reroute", inputs=[("", "*")], outputs=["IMAGE"], properties={"showOutputText": False})
    sub.node(2, "ImageInvert")
    sub.connect(_SUB_INPUT, image, 1, 0, "IMAGE")
    sub.connect(1, 0, 2, "image", "IMAGE")
    sub.connect(2, 0, _SUB_OUTPUT, out, "IMAGE")
    definition = sub.definition("reroute inside")
    g = Graph()
    g.node(
        1,
        "PrimitiveNode",
        [96, "fixed"],
        inputs=[],
        outputs=["INT"],
        properties={"Run widget replace on values": False},
    )
    g.nodes[-1]["outputs"][0].update(name="INT", widget={"name": "width"})
    g.node(2, "EmptyImage", [64, 64, 1, 0])
    g.node(3, "EmptyImage", [64, 64, 2, 0])
    g.node(4, "Reroute", inputs=[("", "*")], outputs=["INT"], properties={"showOutputText": False})
    g.node(5, "Reroute", inputs=[("", "*")], outputs=["IMAGE"], properties={"showOutputText": False})
    g.node(6, "Reroute", inputs=[("", "*")], outputs=["IMAGE"], properties={"showOutputText": False})
    g.node(7, "ImageBlur", [2, 0.5], mode=4)
    g.node(8, "ImageBatch")
    instance(g, 9, definition, [])
    g.node(10, "SaveImage", ["reroutes"])
    g.node(
        11,
        "PrimitiveNode",
        ["%EmptyImage.batch_size%/%date:yyyy%", "fixed"],
        inputs=[],
        outputs=["STRING"],
        properties={"Run widget replace on values": True},
    )
    g.nodes[-1]["outputs"][0].update(name="STRING", widget={"name": "filename_prefix"})
    g.connect(1, 0, 2, "width", "INT")
    g.connect(1, 0, 4, 0, "INT")
    g.connect(4, 0, 3, "height", "INT")
    g.connect(2, 0, 5, 0, "IMAGE")
    g.connect(5, 0, 6, 0, "IMAGE")
    g.connect(6, 0, 7, "image", "IMAGE")
    g.connect(7, 0, 8, "image1", "IMAGE")
    native = g.connect(3, 0, 9, "image", "IMAGE")
    g.connect(9, 0, 8, "image2", "IMAGE")
    g.connect(8, 0, 10, "images", "IMAGE")
    g.connect(11, 0, 10, "filename_prefix", "STRING")
    return workflow(
        g,
        [definition],
        reroutes=[{"id": 1, "pos": [300, 300], "linkIds": [native]}],
        linkExtensions=[{"id": native, "parentId": 1}],
        harness={"now": [2031, 12, 31, 23, 59, 58]},
    )


def widgets_and_controls() -> dict[str, Any]:
    """control_after_generate values are stored but not sent; a converted widget input takes its link;
    a remote combo's refresh button is sent; surplus saved values are dropped."""
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    g.node(2, "ImageAddNoise", [123, "randomize", 0.25])
    g.node(3, "PrimitiveInt", [48, "increment"])
    g.node(4, "ImageScale", ["bicubic", 100, 50, "center"])
    g.node(5, "PreviewImage")
    g.node(6, "LoadImageOutput", ["ComfyUI_00001_.png [output]", True, "refresh", "image"])
    g.node(7, "LoadImage", ["example.png", "image", ""])
    g.node(8, "ImageBatch")
    g.connect(6, 0, 8, "image1", "IMAGE")
    g.connect(7, 0, 8, "image2", "IMAGE")
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 4, "image", "IMAGE")
    g.connect(3, 0, 4, "height", "INT")
    g.connect(4, 0, 5, "images", "IMAGE")
    return workflow(g)


def _js_numbers(value: Any) -> Any:
    """JSON.stringify writes 1.0 as 1; so does every save the frontend makes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    return value


FIXTURES = {
    "subgraph_promoted": subgraph_promoted,
    "nested_subgraph": nested_subgraph,
    "nested_subgraph_outer_first": lambda: nested_subgraph(inner_first=False),
    "promoted_widget_kinds": promoted_widget_kinds,
    "subgraph_primitive_and_tokens": subgraph_primitive_and_tokens,
    "subgraph_short_instance": subgraph_short_instance,
    "audio_nodes": audio_nodes,
    "dynamic_prompts": dynamic_prompts,
    "filename_tokens": filename_tokens,
    "muted_and_bypassed": muted_and_bypassed,
    "bypass_types": bypass_types,
    "dynamic_prompt_edges": dynamic_prompt_edges,
    "subgraph_modes": subgraph_modes,
    "primitives_and_reroutes": primitives_and_reroutes,
    "widgets_and_controls": widgets_and_controls,
}


# -- workflows the frontend 1.27.10 fails to convert (it throws); the converter refuses them ------------


def refused_passthrough_output() -> dict[str, Any]:
    """A subgraph output wired straight from a subgraph input."""
    sub = Graph(subgraph=True, first_link=100)
    image = sub.sub_input("image", "IMAGE")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.connect(_SUB_INPUT, image, _SUB_OUTPUT, out, "IMAGE")
    definition = sub.definition("passthrough")
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    instance(g, 2, definition, [])
    g.node(3, "PreviewImage")
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 3, "images", "IMAGE")
    return workflow(g, [definition])


def refused_chained_reroute_instances() -> dict[str, Any]:
    """Two chained instances of a subgraph that is only a Reroute: the frontend's loop guard trips."""
    sub = Graph(subgraph=True, first_link=100)
    image = sub.sub_input("image", "IMAGE")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(1, "Reroute", inputs=[("", "*")], outputs=["IMAGE"], properties={"showOutputText": False})
    sub.connect(_SUB_INPUT, image, 1, 0, "IMAGE")
    sub.connect(1, 0, _SUB_OUTPUT, out, "IMAGE")
    definition = sub.definition("reroute only")
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    instance(g, 2, definition, [])
    instance(g, 3, definition, [])
    g.node(4, "PreviewImage")
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 3, "image", "IMAGE")
    g.connect(3, 0, 4, "images", "IMAGE")
    return workflow(g, [definition])


def refused_primitive_in_subgraph() -> dict[str, Any]:
    """A PrimitiveNode inside a subgraph (the frontend looks its links up in the root graph)."""
    sub = Graph(subgraph=True, first_link=100)
    image = sub.sub_input("image", "IMAGE")
    out = sub.sub_output("IMAGE", "IMAGE")
    sub.node(
        1,
        "PrimitiveNode",
        [9, "fixed"],
        inputs=[],
        outputs=["INT"],
        properties={"Run widget replace on values": False},
    )
    sub.nodes[-1]["outputs"][0].update(widget={"name": "blur_radius"})
    sub.node(2, "ImageBlur", [3, 1])
    sub.connect(_SUB_INPUT, image, 2, "image", "IMAGE")
    sub.connect(1, 0, 2, "blur_radius", "INT")
    sub.connect(2, 0, _SUB_OUTPUT, out, "IMAGE")
    definition = sub.definition("primitive inside")
    g = Graph()
    g.node(1, "EmptyImage", [64, 64, 1, 0])
    instance(g, 2, definition, [])
    g.node(3, "PreviewImage")
    g.connect(1, 0, 2, "image", "IMAGE")
    g.connect(2, 0, 3, "images", "IMAGE")
    return workflow(g, [definition])


REFUSED = {
    "refused_passthrough_output": refused_passthrough_output,
    "refused_chained_reroute_instances": refused_chained_reroute_instances,
    "refused_primitive_in_subgraph": refused_primitive_in_subgraph,
}


if __name__ == "__main__":
    for fixture_name, build in {**FIXTURES, **REFUSED}.items():
        (HERE / f"{fixture_name}.json").write_text(json.dumps(_js_numbers(build()), indent=1) + "\n")
        print("wrote", fixture_name)
