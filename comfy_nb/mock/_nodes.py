"""What a mock node is: the data passed between nodes, the context a running node sees, and the
registry ``NODE_IMPLS`` that the node modules fill (``_sampling_nodes``, ``_image_nodes``, ``_loaders``).

Every node is an ``async`` function ``(ctx, **inputs) -> (outputs tuple, ui dict | None)``. ``ctx`` is
the executor's per-node context (progress, previews, text, files). Data types on the wire between
nodes: IMAGE = list of RGB images (a batch), MASK = list of "L" images (255 = masked), LATENT =
``Latent`` (pixels at full size; ``images is None`` for an empty latent), MODEL/CLIP/VAE/... small
frozen descriptions of the fake model files. Nodes run on real pixels (Pillow), without a model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

__all__ = [
    "NODE_IMPLS",
    "ClipRef",
    "ClipVisionRef",
    "Conditioning",
    "ImageBatch",
    "Latent",
    "ModelRef",
    "NodeContext",
    "NodeImpl",
    "UpscaleModelRef",
    "VaeRef",
    "encode_for_error",
    "multiple_of_8",
    "register",
    "require_model",
    "scale_image",
]

ImageBatch = list[Image.Image]


@dataclass(frozen=True)
class ModelRef:
    name: str
    loras: tuple[tuple[str, float], ...] = ()
    min_cfg: float | None = None
    family: str | None = None
    """The file's model family (``protocol.MODEL_FAMILIES``); ``None``: an SD1.5-like image model."""


@dataclass(frozen=True)
class ClipRef:
    name: str
    loras: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class VaeRef:
    name: str
    family: str | None = None
    valid: bool = True
    """False for the VAE a checkpoint loader returns from a file that has none (a diffusion model alone)."""


@dataclass(frozen=True)
class ClipVisionRef:
    name: str


@dataclass(frozen=True)
class UpscaleModelRef:
    name: str
    scale: int


@dataclass(frozen=True)
class Conditioning:
    text: str
    clip: ClipRef | None = None
    init_image: Image.Image | None = None
    concat_image: Image.Image | None = None

    def __str__(self) -> str:
        return f"<CONDITIONING {self.text[:40]!r}>"


@dataclass(frozen=True)
class Latent:
    width: int
    height: int
    count: int
    images: tuple[Image.Image, ...] | None = None
    noise_mask: tuple[Image.Image, ...] | None = None
    video: bool = False
    channels: int | None = None
    """Latent channels of the VAE that encoded it; ``None`` for an empty latent (the sampler fits it)."""
    frames: int = 1
    """Pixel frames per batch item of a video latent."""

    def __str__(self) -> str:
        return f"<LATENT {self.count}x{self.width}x{self.height}>"


class NodeContext(Protocol):
    node_id: str
    prompt_id: str

    async def progress(
        self, value: int | float, total: int | float, preview: bytes | None = None, mime: str = "image/jpeg"
    ) -> None: ...

    async def text(self, text: str) -> None: ...

    async def step_sleep(self) -> None: ...

    async def sleep(self, seconds: float) -> None: ...

    @property
    def preview_size(self) -> int: ...

    @property
    def sampler_previews(self) -> bool: ...

    def folder(self, kind: str) -> str: ...

    def models(self, folder: str) -> list[str]: ...

    def family(self, folder: str, name: str) -> str | None: ...

    def next_counter(self, folder: str, filename: str, count: int = 1) -> int: ...

    def temp_prefix(self) -> str: ...

    def input_changed(self) -> None: ...


NodeFn = Callable[..., Awaitable[tuple[tuple[Any, ...], dict[str, Any] | None]]]


@dataclass(frozen=True)
class NodeImpl:
    fn: NodeFn
    output_node: bool = False
    hidden: tuple[str, ...] = ()
    is_changed: Callable[[Any, dict[str, Any]], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


NODE_IMPLS: dict[str, NodeImpl] = {}


def register(name: str, *, output_node: bool = False, hidden: tuple[str, ...] = ()) -> Callable[[NodeFn], NodeFn]:
    def deco(fn: NodeFn) -> NodeFn:
        NODE_IMPLS[name] = NodeImpl(fn, output_node=output_node, hidden=hidden)
        return fn

    return deco


# ---------------------------------------------------------------- helpers shared by the node modules

# ---------------------------------------------------------------- helpers

_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bislerp": Image.Resampling.BICUBIC,
}


def _resample(method: str) -> Image.Resampling:
    return _RESAMPLE.get(method, Image.Resampling.BILINEAR)


def scale_image(img: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
    w, h = img.size
    if width == 0 and height == 0:
        return img
    if width == 0:
        width = max(1, round(w * height / h))
    elif height == 0:
        height = max(1, round(h * width / w))
    if crop == "center":
        old_aspect, new_aspect = w / h, width / height
        if old_aspect > new_aspect:
            cw = round(h * new_aspect)
            x = (w - cw) // 2
            img = img.crop((x, 0, x + cw, h))
        elif old_aspect < new_aspect:
            ch = round(w / new_aspect)
            y = (h - ch) // 2
            img = img.crop((0, y, w, y + ch))
    if img.size == (width, height):
        return img
    return img.resize((width, height), _resample(method))



def multiple_of_8(v: int) -> int:
    return max(8, (int(v) // 8) * 8)



def require_model(ctx: NodeContext, folder: str, name: str) -> None:
    """Refuse a model file the folder does not hold (a loader's first check)."""
    if name not in ctx.models(folder):
        raise FileNotFoundError(f"model file {name!r} is not in the mock's {folder} folder")



def encode_for_error(value: Any) -> Any:
    """How ``current_inputs`` shows a value: JSON scalars as they are, anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Image.Image):
        w, h = value[0].size
        return f"<IMAGE batch={len(value)} {w}x{h}>"
    return str(value)

