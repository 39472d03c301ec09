"""Binding parameters by role, following the graph rather than node names.

The prompts are the text encoders that feed the sampler's ``positive``/``negative`` inputs (through
conditioning nodes), the size is the latent (or image-resize) node the sampler's ``latent_image``
comes from, and models are inserted as loader nodes with every consumer rewired. When a role has no
target or several, the error lists the candidates and says how to pick one (``node="6"``).
"""

from __future__ import annotations

from typing import Any

from ..errors import WorkflowError
from ..protocol import is_link
from ._graph import Graph, Node

__all__ = ["RoleBinding"]

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


class RoleBinding(Graph):
    """The role setters of ``Workflow`` (``set_prompt``, ``set_seed``, ``set_size``, ``add_lora``, ...) and
    ``parameters()``, which reads the same roles back."""

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
