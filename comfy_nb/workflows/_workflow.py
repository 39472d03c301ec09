"""``Workflow``: an API-format graph you can load, inspect, bind parameters into and validate.

Binding follows the graph rather than node names: the prompts are the text encoders that feed the
sampler's ``positive``/``negative`` inputs (through conditioning nodes), the size is the latent (or
image-resize) node the sampler's ``latent_image`` comes from, and models are inserted as loader
nodes with every consumer rewired. When a role has no target or several, the error lists the
candidates and says how to pick one (``node="6"``).
"""

from __future__ import annotations

import builtins
import copy
import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import WorkflowError
from ..protocol import api_graph, is_link, is_ui_workflow, prompt_validation_error, validate_prompt
from ._defs import ObjectInfo, as_node_defs, as_object_info
from ._ui import ui_to_api
from ._ui_text import RandomSource

__all__ = ["Node", "Workflow"]

_SAMPLER_INPUTS = frozenset({"seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler"})
_TEXT_INPUTS = ("text", "text_g", "text_l", "prompt")
_SEED_INPUTS = ("seed", "noise_seed")
_FRAME_INPUTS = ("length", "video_frames", "frames")
# Inputs a size search does not follow: they carry models or conditioning, not the picture.
_NOT_PICTURE = frozenset(
    {"model", "clip", "vae", "positive", "negative", "clip_vision", "control_net", "upscale_model"}
)
# Conditioning nodes that discard what they receive: a prompt behind them is not the sampler's.
_CONDITIONING_RESETS = frozenset({"ConditioningZeroOut"})
_LORA_CLASSES = ("LoraLoader", "LoraLoaderModelOnly")
# Output slots of loaders whose consumers may not tell us by input name.
_LOADER_SLOTS = {"MODEL": 0, "CLIP": 1, "VAE": 2}


class Node:
    """A live view of one node: edits to ``inputs`` and ``title`` change the workflow."""

    def __init__(self, workflow: Workflow, node_id: str) -> None:
        self._workflow = workflow
        self.id = node_id

    @property
    def _data(self) -> dict[str, Any]:
        return self._workflow._nodes[self.id]

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
        return isinstance(other, Node) and other._workflow is self._workflow and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Workflow:
    """An API-format ComfyUI graph ``{node_id: {"class_type", "inputs", "_meta"}}``."""

    def __init__(self, prompt: Mapping[str, Any], *, name: str | None = None) -> None:
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
        self.name = name

    # -- loading and saving --------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        object_info: ObjectInfo | None = None,
        *,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Read an API-format file, or a UI-format one when ``object_info`` is given to convert it
        (``rng``/``now`` as in ``from_ui``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkflowError(f"cannot read workflow {path}: {exc}") from None
        return cls._from_data(data, object_info, name=path.stem, source=str(path), rng=rng, now=now)

    @classmethod
    def from_ui(
        cls,
        ui: Mapping[str, Any],
        object_info: ObjectInfo,
        *,
        name: str | None = None,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Convert a UI-format workflow exactly as the ComfyUI frontend would, using the server's node definitions.

        ``rng`` (a seed or a ``random.Random``) fixes the ``{a|b}`` choices in dynamic-prompt text, which
        are random by default as in the frontend; ``now`` is the time for ``%date:...%`` in file names
        (default: now).
        """
        return cls(ui_to_api(ui, as_node_defs(object_info), rng=rng, now=now), name=name)

    @classmethod
    def from_png(
        cls,
        path: str | os.PathLike[str],
        object_info: ObjectInfo | None = None,
        *,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Read the graph ComfyUI embeds in a PNG: the ``prompt`` text chunk, else ``workflow`` (UI, needs object_info)."""
        from PIL import Image

        try:
            with Image.open(path) as image:
                chunks = {k: v for k, v in image.info.items() if isinstance(v, str)}
        except OSError as exc:
            raise WorkflowError(f"cannot read {path} as an image: {exc}") from None
        for key in ("prompt", "workflow"):
            if key in chunks:
                try:
                    data = json.loads(chunks[key])
                except ValueError:
                    raise WorkflowError(f"the {key!r} metadata in {path} is not JSON") from None
                if key == "workflow" and object_info is None:
                    raise WorkflowError(
                        f"{path} only carries the UI workflow; pass object_info to convert it"
                    )
                return cls._from_data(
                    data, object_info, name=Path(path).stem, source=str(path), rng=rng, now=now
                )
        raise WorkflowError(f"{path} has no ComfyUI 'prompt' or 'workflow' metadata")

    @classmethod
    def _from_data(
        cls,
        data: Any,
        object_info: ObjectInfo | None,
        *,
        name: str,
        source: str,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        if is_ui_workflow(data):
            if object_info is None:
                raise WorkflowError(
                    f"{source} is a UI-format workflow (saved with 'Save', not 'Export (API)'): pass "
                    "object_info=client.object_info() to convert it, or export it in API format"
                )
            return cls.from_ui(data, object_info, name=name, rng=rng, now=now)
        if not isinstance(data, Mapping):
            raise WorkflowError(f"{source} is not a ComfyUI workflow (expected a JSON object)")
        return cls(data, name=name)

    def to_api(self) -> dict[str, Any]:
        """The prompt to POST: a deep copy, JSON-ready."""
        return copy.deepcopy(self._nodes)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self._nodes, indent=indent, ensure_ascii=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the API-format JSON (loadable by ``Workflow.load`` and ComfyUI's API)."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    def copy(self) -> Workflow:
        return Workflow(self._nodes, name=self.name)

    # -- finding nodes -------------------------------------------------------------------------
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

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Workflow{name}: {len(self)} nodes>"

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

    # -- validation ----------------------------------------------------------------------------
    def validate(
        self,
        object_info: ObjectInfo,
        *,
        strict_combos: bool = True,
        input_files: builtins.set[str] | None = None,
    ) -> None:
        """Check the graph as the server would; raise ``PromptValidationError`` in the server's words.

        Unlike the server, V3 combo values are checked too (``strict_combos``), and a graph where only
        some outputs are valid is an error (the server would silently drop the others).
        """
        prompt = self.to_api()
        check = validate_prompt(
            prompt,
            as_object_info(object_info),
            strict_combos=strict_combos,
            input_files=input_files,
            client_checks=True,
        )
        if check.ok and not check.node_errors:
            return
        body = check.error_body or {
            "error": {
                "type": "prompt_outputs_failed_validation",
                "message": "Some outputs failed validation (the server would drop them)",
                "details": "",
                "extra_info": {},
            },
            "node_errors": check.node_errors,
        }
        raise prompt_validation_error(body, prompt=prompt)

    # -- role binding --------------------------------------------------------------------------
    def samplers(self, node: str | None = None) -> list[Node]:
        """The sampler nodes (positive/negative links plus seed/steps/cfg inputs), or the one named."""
        if node is not None:
            return [self[node]]
        found = [
            n
            for n in self.nodes()
            if is_link(n.inputs.get("positive"))
            and is_link(n.inputs.get("negative"))
            and _SAMPLER_INPUTS & set(n.inputs)
        ]
        if not found:
            raise WorkflowError(
                "this workflow has no sampler (a node with positive/negative links and seed/steps/cfg inputs); "
                f"nodes: {self._listing(self.nodes())}"
            )
        return found

    def set_prompt(
        self,
        positive: str | None = None,
        negative: str | None = None,
        *,
        node: str | None = None,
        negative_node: str | None = None,
    ) -> None:
        """Set the text of the encoders feeding the samplers' positive (and negative) inputs."""
        for role, text, pick in (("positive", positive, node), ("negative", negative, negative_node)):
            if text is None:
                continue
            encoder = self[pick] if pick is not None else self._prompt_encoder(role)
            fields = [name for name in _TEXT_INPUTS if name in encoder.inputs]
            if not fields:
                raise WorkflowError(
                    f"node {encoder.describe()} has no text input ({', '.join(_TEXT_INPUTS)})"
                )
            for name in fields:
                self._assign(encoder, name, text)

    def _prompt_encoder(self, role: str) -> Node:
        found = self._encoders(role)
        other = self._encoders("negative" if role == "positive" else "positive")
        keyword = "node" if role == "positive" else "negative_node"
        if not found:
            raise WorkflowError(
                f"no text encoder feeds the samplers' {role} input; text encoders here: "
                f'{self._listing(self._text_nodes())}; pick one with wf.set_prompt(..., {keyword}="<id>")'
            )
        if len(found) > 1:
            raise WorkflowError(
                f"ambiguous {role} prompt: {len(found)} text encoders feed the samplers' {role} inputs: "
                f'{self._listing(found)}; pick one with wf.set_prompt(..., {keyword}="{found[0].id}")'
            )
        if found[0] in other:
            raise WorkflowError(
                f"node {found[0].describe()} feeds both the positive and the negative input of the sampler, so "
                f"setting the {role} prompt would change both; give it its own encoder or pick one with "
                f'wf.set_prompt(..., {keyword}="<id>")'
            )
        return found[0]

    def _encoders(self, role: str) -> list[Node]:
        found: list[Node] = []
        seen: set[str] = set()
        stack = [s.inputs[role][0] for s in self.samplers() if is_link(s.inputs.get(role))]
        while stack:
            node_id = stack.pop(0)
            if node_id in seen or node_id not in self._nodes:
                continue
            seen.add(node_id)
            current = self[node_id]
            if current.class_type in _CONDITIONING_RESETS:
                continue
            if any(name in current.inputs for name in _TEXT_INPUTS):
                if current not in found:
                    found.append(current)
                continue
            if is_link(current.inputs.get(role)):
                stack.append(current.inputs[role][0])
                continue
            stack += [v[0] for k, v in current.inputs.items() if k.startswith("conditioning") and is_link(v)]
        return found

    def _text_nodes(self) -> list[Node]:
        return [n for n in self.nodes() if any(name in n.inputs for name in _TEXT_INPUTS)]

    def set_seed(self, seed: int, *, node: str | None = None) -> None:
        """Set the seed of every sampler (or of ``node``); a linked seed is set at its source."""
        for sampler in self.samplers(node):
            name = next((n for n in _SEED_INPUTS if n in sampler.inputs), None)
            if name is not None:
                self._assign(sampler, name, seed)
            elif is_link(sampler.inputs.get("noise")):  # custom samplers take noise from a RandomNoise node
                self._assign(self[sampler.inputs["noise"][0]], "noise_seed", seed)
            else:
                raise WorkflowError(f"sampler {sampler.describe()} has no seed input")

    def set_sampler(
        self,
        sampler: str | None = None,
        *,
        scheduler: str | None = None,
        steps: int | None = None,
        cfg: float | None = None,
        denoise: float | None = None,
        node: str | None = None,
    ) -> None:
        """Set sampler name, scheduler, steps, CFG and denoise on every sampler (or on ``node``)."""
        wanted = {
            "sampler_name": sampler,
            "scheduler": scheduler,
            "steps": steps,
            "cfg": cfg,
            "denoise": denoise,
        }
        targets = self.samplers(node)
        for name, value in wanted.items():
            if value is None:
                continue
            having = [s for s in targets if name in s.inputs]
            if not having:
                raise WorkflowError(f"no sampler here has a {name!r} input: {self._listing(targets)}")
            for target in having:
                self._assign(target, name, value)

    def size_nodes(self, node: str | None = None) -> list[Node]:
        """The nodes that decide the picture size: found from each sampler's ``latent_image`` upwards."""
        if node is not None:
            return [self[node]]
        found: list[Node] = []
        seen: set[str] = set()
        stack = [
            s.inputs["latent_image"][0] for s in self.samplers() if is_link(s.inputs.get("latent_image"))
        ]
        while stack:
            node_id = stack.pop(0)
            if node_id in seen or node_id not in self._nodes:
                continue
            seen.add(node_id)
            current = self[node_id]
            if "width" in current.inputs and "height" in current.inputs:
                found.append(current)
                continue
            if _SAMPLER_INPUTS & set(current.inputs) and "latent_image" in current.inputs:
                names = ["latent_image"]
            else:
                names = [
                    k for k in current.inputs if k not in _NOT_PICTURE and not k.startswith("conditioning")
                ]
            stack += [current.inputs[k][0] for k in names if is_link(current.inputs.get(k))]
        return found

    def _size_node(self, node: str | None, what: str) -> Node:
        return self._single(
            self.size_nodes(node), f"node that sets the {what}", 'wf.set_size(..., node="<id>")'
        )

    def set_size(self, width: int, height: int, *, node: str | None = None) -> None:
        """Set the size on the latent (or resize) node the samplers consume."""
        target = self._size_node(node, "picture size")
        self._assign(target, "width", width)
        self._assign(target, "height", height)

    def set_batch_size(self, batch_size: int, *, node: str | None = None) -> None:
        target = self._size_node(node, "batch size")
        if "batch_size" not in target.inputs:
            raise WorkflowError(f"node {target.describe()} has no batch_size input")
        self._assign(target, "batch_size", batch_size)

    def set_frames(self, frames: int, *, node: str | None = None) -> None:
        """Set the number of video frames on the latent node the samplers consume."""
        target = self._size_node(node, "frame count")
        name = next((n for n in _FRAME_INPUTS if n in target.inputs), None)
        if name is None:
            raise WorkflowError(
                f"node {target.describe()} has no frame count input ({', '.join(_FRAME_INPUTS)})"
            )
        self._assign(target, name, frames)

    def set_fps(self, fps: float, *, node: str | None = None) -> None:
        """Set the frame rate on the output nodes that have one (e.g. SaveAnimatedWEBP)."""
        targets = (
            [self[node]] if node else [n for n in self.nodes() if "fps" in n.inputs and "images" in n.inputs]
        )
        if not targets:
            raise WorkflowError("no output node with an fps input in this workflow")
        for target in targets:
            self._assign(target, "fps", fps)

    def _one_with_input(self, input_name: str, what: str, node: str | None, how: str) -> Node:
        if node is not None:
            return self[node]
        return self._single([n for n in self.nodes() if input_name in n.inputs], what, how)

    def set_checkpoint(self, name: str, *, node: str | None = None) -> None:
        target = self._one_with_input(
            "ckpt_name", "checkpoint loader", node, 'wf.set_checkpoint(..., node="<id>")'
        )
        self._assign(target, "ckpt_name", name)

    def set_diffusion_model(self, name: str, *, node: str | None = None) -> None:
        """Set the ``UNETLoader`` of a family that ships its diffusion model alone."""
        how = 'wf.set_diffusion_model(..., node="<id>")'
        self._assign(self._one_with_input("unet_name", "diffusion model loader", node, how), "unet_name", name)

    def set_text_encoder(self, name: str, *, node: str | None = None) -> None:
        """Set the ``CLIPLoader`` of a family that ships its text encoder alone."""
        how = 'wf.set_text_encoder(..., node="<id>")'
        self._assign(self._one_with_input("clip_name", "text encoder loader", node, how), "clip_name", name)

    def remove_node(self, node_id: str) -> None:
        """Remove a node that nothing links to any more."""
        users = self.consumers(node_id)
        if users:
            raise WorkflowError(f"node {self[node_id].describe()} is still used by {self._listing([n for n, _ in users])}")
        del self._nodes[self[node_id].id]

    def set_mask_from_alpha(self, *, node: str | None = None) -> None:
        """Take the mask from the ``LoadImage`` picture's alpha (transparent = repaint), as the official
        inpaint templates do, instead of from a separate ``LoadImageMask``."""
        masks = self.nodes("LoadImageMask")
        image = (
            self[node] if node else self._single(self.nodes("LoadImage"), "LoadImage node", 'node="<id>"')
        )
        for mask in masks:
            for user, key in self.consumers(mask.id):
                user.inputs[key] = image.output(1)
            self.remove_node(mask.id)

    def set_upscale_model(self, name: str, *, node: str | None = None) -> None:
        how = 'wf.set_upscale_model(..., node="<id>")'
        target = self._one_with_input("model_name", "upscale model loader", node, how)
        self._assign(target, "model_name", name)

    def set_scale_by(self, factor: float, *, node: str | None = None) -> None:
        target = self._one_with_input("scale_by", "scale-by node", node, 'wf.set_scale_by(..., node="<id>")')
        self._assign(target, "scale_by", factor)

    def set_image(self, name: str, *, node: str | None = None) -> None:
        """Point the ``LoadImage`` node at a file in the server's ``input/`` folder (already uploaded)."""
        target = (
            self[node] if node else self._single(self.nodes("LoadImage"), "LoadImage node", 'node="<id>"')
        )
        self._assign(target, "image", name)

    def set_mask(self, name: str, *, node: str | None = None) -> None:
        """Point the ``LoadImageMask`` node at a mask file in the server's ``input/`` folder."""
        target = (
            self[node]
            if node
            else self._single(self.nodes("LoadImageMask"), "LoadImageMask node", 'node="<id>"')
        )
        self._assign(target, "image", name)

    def set_vae(self, name: str) -> Node:
        """Use this VAE: set the VAE loader, or add one and rewire every VAE taken from the checkpoint."""
        loaders = [n for n in self.nodes() if "vae_name" in n.inputs]
        if loaders:
            target = self._single(loaders, "VAE loader", 'wf.set("<id>.vae_name", ...)')
            self._assign(target, "vae_name", name)
            return target
        checkpoints = {n.id for n in self.nodes() if "ckpt_name" in n.inputs}
        users = [
            (n, k)
            for n in self.nodes()
            for k, v in n.inputs.items()
            if k == "vae" and is_link(v) and v[0] in checkpoints
        ]
        if not users:
            raise WorkflowError(
                "no node takes its VAE from a checkpoint loader, so there is nothing to replace"
            )
        loader = self.add_node("VAELoader", {"vae_name": name}, title="VAE")
        for user, key in users:
            user.inputs[key] = loader.output(0)
        return loader

    def add_lora(
        self,
        name: str,
        strength_model: float = 1.0,
        strength_clip: float = 1.0,
        *,
        checkpoint: str | None = None,
    ) -> Node:
        """Insert a LoRA loader after the model loader (after earlier LoRAs) and rewire model and CLIP users.

        After a checkpoint loader that is a ``LoraLoader`` (model and CLIP); after a ``UNETLoader``,
        which gives no CLIP, a ``LoraLoaderModelOnly``.
        """
        how = 'wf.add_lora(..., checkpoint="<id>")'
        if checkpoint is not None:
            ckpt = self[checkpoint]
        else:
            loaders = [n for n in self.nodes() if "ckpt_name" in n.inputs or "unet_name" in n.inputs]
            ckpt = self._single(loaders, "model loader (checkpoint or diffusion model)", how)
        model = (ckpt.id, self._slot_of(ckpt, "model", "MODEL"))
        clip: tuple[str, int] | None = None
        if "ckpt_name" in ckpt.inputs:
            clip = (ckpt.id, self._slot_of(ckpt, "clip", "CLIP"))
        while True:  # walk to the end of the existing LoRA chain
            users = {n for n, _ in self.consumers(*model)}
            if len(users) != 1 or next(iter(users)).class_type not in _LORA_CLASSES:
                break
            lora = next(iter(users))
            if clip is not None and lora.class_type == "LoraLoader" and lora.inputs.get("clip") == list(clip):
                clip = (lora.id, 1)
            model = (lora.id, 0)
        model_users = self.consumers(*model)
        clip_users = self.consumers(*clip) if clip else []
        if not model_users:
            raise WorkflowError(
                f"nothing uses the model of {ckpt.describe()}, so a LoRA would have no effect"
            )
        inputs: dict[str, Any] = {"model": list(model), "lora_name": name, "strength_model": strength_model}
        if clip_users and clip is not None:
            inputs.update(clip=list(clip), strength_clip=strength_clip)
            added = self.add_node("LoraLoader", inputs, title=f"LoRA {name}")
        else:
            added = self.add_node("LoraLoaderModelOnly", inputs, title=f"LoRA {name}")
        for user, key in model_users:
            user.inputs[key] = added.output(0)
        for user, key in clip_users:
            user.inputs[key] = added.output(1)
        return added

    def _slot_of(self, loader: Node, input_name: str, output_type: str) -> int:
        """Which output of ``loader`` carries ``output_type``: learnt from consumers, else the usual layout."""
        for data in self._nodes.values():
            value = data["inputs"].get(input_name)
            if is_link(value) and value[0] == loader.id:
                slot: int = value[1]
                return slot
        return _LOADER_SLOTS[output_type]

    # -- reading back --------------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """What a gallery shows: prompts, seed, sampler settings, model and size as bound now."""
        params: dict[str, Any] = {}
        try:
            sampler = self.samplers()[0]
        except WorkflowError:
            sampler = None
        if sampler is not None:
            for key, names in (
                ("seed", _SEED_INPUTS),
                ("sampler", ("sampler_name",)),
                ("scheduler", ("scheduler",)),
                ("steps", ("steps",)),
                ("cfg", ("cfg",)),
                ("denoise", ("denoise",)),
            ):
                value = next((sampler.inputs[n] for n in names if n in sampler.inputs), None)
                params[key] = None if is_link(value) else value
            for role, key in (("positive", "prompt"), ("negative", "negative_prompt")):
                found = self._encoders(role)
                text = found[0].inputs.get("text") if len(found) == 1 else None
                params[key] = text if isinstance(text, str) else None
            sizes = self.size_nodes()
            if len(sizes) == 1:
                for key in ("width", "height", "batch_size"):
                    value = sizes[0].inputs.get(key)
                    params[key] = None if is_link(value) else value
        checkpoints = [
            n.inputs[k] for n in self.nodes() for k in ("ckpt_name", "unet_name") if k in n.inputs
        ]
        params["model"] = checkpoints[0] if len(checkpoints) == 1 else None
        return params

    # -- helpers -------------------------------------------------------------------------------
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
