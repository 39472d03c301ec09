"""What each mock node class does, on real pixels (Pillow), without a model.

Every node is an ``async`` function ``(ctx, **inputs) -> (outputs tuple, ui dict | None)``. ``ctx`` is
the executor's per-node context (progress, previews, text, files). Data types on the wire between
nodes: IMAGE = list of RGB images (a batch), MASK = list of "L" images (255 = masked), LATENT =
``Latent`` (pixels at full size; ``images is None`` for an empty latent), MODEL/CLIP/VAE/... small
frozen descriptions of the fake model files.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from PIL import Image, ImageChops, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

from ..protocol import MODEL_FAMILIES
from ._images import GenParams, encode_jpeg, encode_png, generate, noise_image, step_preview

__all__ = ["NODE_IMPLS", "Latent", "NodeContext", "NodeImpl"]

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


def _node(name: str, *, output_node: bool = False, hidden: tuple[str, ...] = ()) -> Callable[[NodeFn], NodeFn]:
    def deco(fn: NodeFn) -> NodeFn:
        NODE_IMPLS[name] = NodeImpl(fn, output_node=output_node, hidden=hidden)
        return fn

    return deco


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


def _scale(img: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
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


def _rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 255, (color >> 8) & 255, color & 255


def _mult8(v: int) -> int:
    return max(8, (int(v) // 8) * 8)


def _require(ctx: NodeContext, folder: str, name: str) -> None:
    if name not in ctx.models(folder):
        raise FileNotFoundError(f"model file {name!r} is not in the mock's {folder} folder")


# ComfyUI's own wording (nodes.py CLIPTextEncode.encode, comfy/sd.py VAE.throw_exception_if_invalid).
CLIP_INVALID = (
    "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint "
    "does not contain a valid clip or text encoder model."
)
VAE_INVALID = (
    "ERROR: VAE is invalid: None\n\nIf the VAE is from a checkpoint loader node your checkpoint does not "
    "contain a valid VAE."
)


def _check_vae(vae: VaeRef) -> None:
    if not vae.valid:
        raise RuntimeError(VAE_INVALID)


def _check_fit(model: ModelRef, latent: Latent, cfg: float) -> None:
    """Refuse a latent the model cannot take, as torch does inside a real sampler.

    Like ``comfy.sample.fix_empty_latent_channels``: an empty latent takes the model's channels and a
    video model takes an image latent as one frame; an image model given a video latent fails in its
    first conv2d, and an encoded latent of other channels fails there too.
    """
    family = MODEL_FAMILIES.get(model.family or "sd15", MODEL_FAMILIES["sd15"])
    channels = latent.channels or family.latent_channels
    batch = max(1, latent.count // max(1, latent.frames)) * (1 if float(cfg) == 1.0 else 2)
    h, w = latent.height // 8, latent.width // 8
    if latent.video and not family.video:
        frames = (latent.frames - 1) // 4 + 1
        raise RuntimeError(
            "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
            f"[{batch}, {channels}, {frames}, {h}, {w}]"
        )
    if not family.video and channels != family.latent_channels:
        raise RuntimeError(
            f"Given groups=1, weight of size [320, {family.latent_channels}, 3, 3], expected "
            f"input[{batch}, {channels}, {h}, {w}] to have {family.latent_channels} channels, but got "
            f"{channels} channels instead"
        )


def _grow(mask: Image.Image, by: int) -> Image.Image:
    if by <= 0:
        return mask
    return mask.filter(ImageFilter.MaxFilter(by * 2 + 1))


_FORMAT_TOKENS = re.compile(r"%(width|height|year|month|day|hour|minute|second)%")


def _save_path(ctx: NodeContext, kind: str, prefix: str, width: int, height: int) -> tuple[str, str, str]:
    """(directory, filename stem, subfolder) for a save prefix, refusing paths outside the folder."""
    now = datetime.datetime.now()
    values = {
        "width": str(width),
        "height": str(height),
        "year": str(now.year),
        "month": f"{now.month:02d}",
        "day": f"{now.day:02d}",
        "hour": f"{now.hour:02d}",
        "minute": f"{now.minute:02d}",
        "second": f"{now.second:02d}",
    }
    prefix = _FORMAT_TOKENS.sub(lambda m: values[m.group(1)], prefix)
    subfolder, filename = os.path.split(os.path.normpath(prefix))
    root = ctx.folder(kind)
    full = os.path.abspath(os.path.join(root, subfolder))
    if os.path.commonpath((root, full)) != root:
        raise ValueError(f"refusing to save outside the {kind} folder: prefix {prefix!r} resolves to {full}")
    os.makedirs(full, exist_ok=True)
    rel = os.path.relpath(full, root)
    return full, filename, "" if rel == "." else rel.replace(os.sep, "/")


def _png_info(prompt: Any, extra_pnginfo: Any) -> PngInfo:
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    if isinstance(extra_pnginfo, dict):
        for key, value in extra_pnginfo.items():
            info.add_text(str(key), json.dumps(value))
    return info


async def _save_images(
    ctx: NodeContext,
    images: ImageBatch,
    prefix: str,
    kind: str,
    prompt: Any,
    extra_pnginfo: Any,
    compress_level: int,
) -> dict[str, Any]:
    w, h = images[0].size if images else (0, 0)
    directory, stem, subfolder = _save_path(ctx, kind, prefix, w, h)
    counter = ctx.next_counter(directory, stem, len(images))
    results = []
    info = _png_info(prompt, extra_pnginfo)
    for img in images:
        name = f"{stem}_{counter:05}_.png"
        img.save(os.path.join(directory, name), format="PNG", pnginfo=info, compress_level=compress_level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return {"images": results}


def _resolve_input(ctx: NodeContext, name: str) -> str:
    for suffix in (" [input]", " [output]", " [temp]"):
        if name.endswith(suffix):
            kind = suffix[2:-1]
            base = ctx.folder(kind)
            name = name[: -len(suffix)]
            break
    else:
        base = ctx.folder("input")
    path = os.path.abspath(os.path.join(base, name))
    if os.path.commonpath((base, path)) != base or not os.path.isfile(path):
        raise FileNotFoundError(f"no such input image: {name!r}")
    return path


# ---------------------------------------------------------------- conditioning


@_node("CLIPTextEncode")
async def clip_text_encode(ctx: NodeContext, text: str, clip: ClipRef | None) -> tuple[tuple[Any, ...], None]:
    if clip is None:
        raise RuntimeError(CLIP_INVALID)
    return ([Conditioning(str(text), clip)],), None


@_node("FluxGuidance")
async def flux_guidance(ctx: NodeContext, conditioning: Any, guidance: float) -> tuple[tuple[Any, ...], None]:
    return (conditioning,), None


@_node("ConditioningZeroOut")
async def conditioning_zero_out(ctx: NodeContext, conditioning: Any) -> tuple[tuple[Any, ...], None]:
    return ([Conditioning("", None)],), None


def _cond_text(cond: Any) -> str:
    if isinstance(cond, list):
        return " | ".join(c.text for c in cond if isinstance(c, Conditioning))
    return ""


def _cond_init(cond: Any) -> Image.Image | None:
    if isinstance(cond, list):
        for c in cond:
            if isinstance(c, Conditioning) and c.init_image is not None:
                return c.init_image
    return None


@_node("InpaintModelConditioning")
async def inpaint_model_conditioning(
    ctx: NodeContext,
    positive: list[Conditioning],
    negative: list[Conditioning],
    vae: VaeRef,
    pixels: ImageBatch,
    mask: ImageBatch,
    noise_mask: bool = True,
) -> tuple[tuple[Any, ...], None]:
    latent = _encode(pixels, vae)
    masks = tuple(m.resize((latent.width, latent.height)) for m in mask)
    if noise_mask:
        latent = replace(latent, noise_mask=masks)
    pos = [replace(c, concat_image=pixels[0]) for c in positive]
    neg = [replace(c, concat_image=pixels[0]) for c in negative]
    return (pos, neg, latent), None


@_node("SVD_img2vid_Conditioning")
async def svd_conditioning(
    ctx: NodeContext,
    clip_vision: ClipVisionRef,
    init_image: ImageBatch,
    vae: VaeRef,
    width: int,
    height: int,
    video_frames: int,
    motion_bucket_id: int,
    fps: int,
    augmentation_level: float,
) -> tuple[tuple[Any, ...], None]:
    first = _scale(init_image[0], _mult8(width), _mult8(height), "bilinear", "center")
    pos = [Conditioning(f"svd motion={motion_bucket_id} fps={fps}", None, init_image=first)]
    neg = [Conditioning("", None)]
    latent = Latent(_mult8(width), _mult8(height), int(video_frames), None, None, video=True)
    return (pos, neg, latent), None


# ---------------------------------------------------------------- latents


@_node("EmptyLatentImage")
async def empty_latent(ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[tuple[Any, ...], None]:
    return (Latent(_mult8(width), _mult8(height), int(batch_size)),), None


@_node("EmptySD3LatentImage")
async def empty_sd3_latent(ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[tuple[Any, ...], None]:
    return (Latent(_mult8(width), _mult8(height), int(batch_size)),), None


@_node("EmptyHunyuanLatentVideo")
async def empty_hunyuan_video(
    ctx: NodeContext, width: int, height: int, length: int, batch_size: int = 1
) -> tuple[tuple[Any, ...], None]:
    frames = ((int(length) - 1) // 4) * 4 + 1
    return (Latent(_mult8(width), _mult8(height), frames * int(batch_size), video=True, frames=frames),), None


def _encode(pixels: ImageBatch, vae: VaeRef) -> Latent:
    _check_vae(vae)
    w, h = pixels[0].size
    w8, h8 = _mult8(w), _mult8(h)
    imgs = tuple(p.convert("RGB").crop((0, 0, w8, h8)) if p.size != (w8, h8) else p.convert("RGB") for p in pixels)
    family = MODEL_FAMILIES.get(vae.family or "sd15", MODEL_FAMILIES["sd15"])
    # a video VAE encodes the batch as the frames of one video (a 5-D latent)
    frames = len(imgs) if family.video else 1
    return Latent(w8, h8, len(imgs), imgs, video=family.video, channels=family.latent_channels, frames=frames)


@_node("VAEEncode")
async def vae_encode(ctx: NodeContext, pixels: ImageBatch, vae: VaeRef) -> tuple[tuple[Any, ...], None]:
    return (_encode(pixels, vae),), None


@_node("VAEEncodeForInpaint")
async def vae_encode_inpaint(
    ctx: NodeContext, pixels: ImageBatch, vae: VaeRef, mask: ImageBatch, grow_mask_by: int = 6
) -> tuple[tuple[Any, ...], None]:
    latent = _encode(pixels, vae)
    masks = tuple(_grow(m.resize((latent.width, latent.height)), int(grow_mask_by)) for m in mask)
    grey = Image.new("RGB", (latent.width, latent.height), (128, 128, 128))
    imgs = tuple(
        Image.composite(grey, img, masks[min(i, len(masks) - 1)]) for i, img in enumerate(latent.images or ())
    )
    return (replace(latent, images=imgs, noise_mask=masks),), None


@_node("SetLatentNoiseMask")
async def set_latent_noise_mask(ctx: NodeContext, samples: Latent, mask: ImageBatch) -> tuple[tuple[Any, ...], None]:
    return (replace(samples, noise_mask=tuple(m.resize((samples.width, samples.height)) for m in mask)),), None


def _latent_resize(samples: Latent, width: int, height: int, method: str, crop: str) -> Latent:
    if width == 0 and height == 0:
        return samples
    if width == 0:
        width = round(samples.width * height / samples.height)
    elif height == 0:
        height = round(samples.height * width / samples.width)
    width, height = _mult8(width), _mult8(height)
    imgs = None if samples.images is None else tuple(_scale(i, width, height, method, crop) for i in samples.images)
    masks = None if samples.noise_mask is None else tuple(m.resize((width, height)) for m in samples.noise_mask)
    return replace(samples, width=width, height=height, images=imgs, noise_mask=masks)


@_node("LatentUpscale")
async def latent_upscale(
    ctx: NodeContext, samples: Latent, upscale_method: str, width: int, height: int, crop: str
) -> tuple[tuple[Any, ...], None]:
    return (_latent_resize(samples, int(width), int(height), upscale_method, crop),), None


@_node("LatentUpscaleBy")
async def latent_upscale_by(
    ctx: NodeContext, samples: Latent, upscale_method: str, scale_by: float
) -> tuple[tuple[Any, ...], None]:
    w = round(samples.width * float(scale_by))
    h = round(samples.height * float(scale_by))
    return (_latent_resize(samples, w, h, upscale_method, "disabled"),), None


@_node("RepeatLatentBatch")
async def repeat_latent_batch(ctx: NodeContext, samples: Latent, amount: int) -> tuple[tuple[Any, ...], None]:
    n = int(amount)
    return (
        replace(
            samples,
            count=samples.count * n,
            images=None if samples.images is None else samples.images * n,
            noise_mask=None if samples.noise_mask is None else samples.noise_mask * n,
        ),
    ), None


async def _sample(
    ctx: NodeContext,
    model: ModelRef,
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Any,
    negative: Any,
    latent: Latent,
    strength: float,
    progress_steps: int,
) -> Latent:
    _check_fit(model, latent, cfg)
    params = GenParams(
        positive=_cond_text(positive),
        negative=_cond_text(negative),
        seed=int(seed),
        sampler=sampler_name,
        scheduler=scheduler,
        cfg=float(cfg),
        steps=int(steps),
        model=model.name,
        loras=model.loras + _clip_loras(positive),
    )
    init = _cond_init(positive)
    finals: list[Image.Image] = []
    for i in range(latent.count):
        if latent.video:
            img = generate(params, latent.width, latent.height, index=i)
        else:
            img = generate(replace(params, seed=params.seed + i * 7919), latent.width, latent.height)
        if init is not None:
            base = init.resize((latent.width, latent.height))
            shift = ImageChops.offset(base, i * max(1, latent.width // 64), 0)
            img = Image.blend(shift, img, 0.3)
        if latent.images is not None and strength < 1.0:
            src = latent.images[i % len(latent.images)]
            img = Image.blend(src, img, max(0.0, strength))
        if latent.images is not None and latent.noise_mask is not None:
            src = latent.images[i % len(latent.images)]
            img = Image.composite(img, src, latent.noise_mask[i % len(latent.noise_mask)])
        finals.append(img)
    total = max(0, int(progress_steps))
    noise = noise_image(latent.width, latent.height, params.seed) if ctx.sampler_previews and finals else None
    for step in range(total):
        await ctx.step_sleep()
        preview = None
        if noise is not None:
            preview = step_preview(finals[0], noise, step + 1, total, ctx.preview_size)
        await ctx.progress(step + 1, total, preview)
    return replace(latent, images=tuple(finals), count=len(finals))


def _clip_loras(cond: Any) -> tuple[tuple[str, float], ...]:
    if isinstance(cond, list):
        for c in cond:
            if isinstance(c, Conditioning) and c.clip is not None:
                return tuple((f"clip:{n}", s) for n, s in c.clip.loras)
    return ()


@_node("KSampler")
async def ksampler(
    ctx: NodeContext,
    model: ModelRef,
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Any,
    negative: Any,
    latent_image: Latent,
    denoise: float = 1.0,
) -> tuple[tuple[Any, ...], None]:
    if float(denoise) <= 0.0:
        return (latent_image,), None
    out = await _sample(
        ctx, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, float(denoise), steps
    )
    return (out,), None


@_node("KSamplerAdvanced")
async def ksampler_advanced(
    ctx: NodeContext,
    model: ModelRef,
    add_noise: str,
    noise_seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Any,
    negative: Any,
    latent_image: Latent,
    start_at_step: int,
    end_at_step: int,
    return_with_leftover_noise: str,
) -> tuple[tuple[Any, ...], None]:
    steps = int(steps)
    start, end = int(start_at_step), min(int(end_at_step), steps)
    if start >= end:
        return (latent_image,), None
    strength = (end - start) / steps if latent_image.images is not None else 1.0
    out = await _sample(
        ctx, model, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, strength, end - start
    )
    return (out,), None


@_node("VAEDecode")
async def vae_decode(ctx: NodeContext, samples: Latent, vae: VaeRef) -> tuple[tuple[Any, ...], None]:
    _check_vae(vae)
    if samples.images is None:
        grey = Image.new("RGB", (samples.width, samples.height), (92, 88, 84))
        return ([grey] * samples.count,), None
    return (list(samples.images),), None


# ---------------------------------------------------------------- images


@_node("EmptyImage")
async def empty_image(
    ctx: NodeContext, width: int, height: int, batch_size: int = 1, color: int = 0
) -> tuple[tuple[Any, ...], None]:
    img = Image.new("RGB", (int(width), int(height)), _rgb(int(color)))
    return ([img] * int(batch_size),), None


@_node("ImageInvert")
async def image_invert(ctx: NodeContext, image: ImageBatch) -> tuple[tuple[Any, ...], None]:
    return ([ImageOps.invert(i.convert("RGB")) for i in image],), None


@_node("ImageBlur")
async def image_blur(ctx: NodeContext, image: ImageBatch, blur_radius: int, sigma: float) -> tuple[tuple[Any, ...], None]:
    if int(blur_radius) == 0:
        return (image,), None
    radius = min(float(sigma), float(blur_radius))
    return ([i.filter(ImageFilter.GaussianBlur(radius=radius)) for i in image],), None


@_node("ImageScale")
async def image_scale(
    ctx: NodeContext, image: ImageBatch, upscale_method: str, width: int, height: int, crop: str
) -> tuple[tuple[Any, ...], None]:
    return ([_scale(i, int(width), int(height), upscale_method, crop) for i in image],), None


@_node("ImageScaleBy")
async def image_scale_by(
    ctx: NodeContext, image: ImageBatch, upscale_method: str, scale_by: float
) -> tuple[tuple[Any, ...], None]:
    out = []
    for i in image:
        w, h = i.size
        out.append(_scale(i, max(1, round(w * float(scale_by))), max(1, round(h * float(scale_by))), upscale_method, "disabled"))
    return (out,), None


@_node("ImageUpscaleWithModel")
async def image_upscale_with_model(
    ctx: NodeContext, upscale_model: UpscaleModelRef, image: ImageBatch
) -> tuple[tuple[Any, ...], None]:
    out = []
    for i in image:
        w, h = i.size
        big = i.resize((w * upscale_model.scale, h * upscale_model.scale), Image.Resampling.LANCZOS)
        out.append(big.filter(ImageFilter.UnsharpMask(radius=2, percent=60)))
    return (out,), None


@_node("ImageQuantize")
async def image_quantize(ctx: NodeContext, image: ImageBatch, colors: int, dither: str) -> tuple[tuple[Any, ...], None]:
    modes = {
        "none": Image.Dither.NONE,
        "floyd-steinberg": Image.Dither.FLOYDSTEINBERG,
        "bayer-2": Image.Dither.ORDERED,
        "bayer-4": Image.Dither.ORDERED,
        "bayer-8": Image.Dither.ORDERED,
        "bayer-16": Image.Dither.ORDERED,
    }
    if dither not in modes:
        raise ValueError(f"ImageQuantize: unknown dither {dither!r}; expected one of {sorted(modes)}")
    mode = modes[dither] if modes[dither] != Image.Dither.ORDERED else Image.Dither.FLOYDSTEINBERG
    out = [i.convert("RGB").quantize(colors=int(colors), dither=mode).convert("RGB") for i in image]
    return (out,), None


@_node("GetImageSize", hidden=("unique_id",))
async def get_image_size(ctx: NodeContext, image: ImageBatch, unique_id: str = "") -> tuple[tuple[Any, ...], None]:
    w, h = image[0].size
    await ctx.text(f"width: {w}, height: {h}\n batch size: {len(image)}")
    return (w, h, len(image)), None


@_node("PrimitiveInt")
async def primitive_int(ctx: NodeContext, value: int) -> tuple[tuple[Any, ...], None]:
    return (int(value),), None


@_node("PrimitiveFloat")
async def primitive_float(ctx: NodeContext, value: float) -> tuple[tuple[Any, ...], None]:
    return (float(value),), None


@_node("PrimitiveString")
async def primitive_string(ctx: NodeContext, value: str) -> tuple[tuple[Any, ...], None]:
    return (str(value),), None


def _load_image_file(ctx: NodeContext, name: str) -> Image.Image:
    with Image.open(_resolve_input(ctx, name)) as f:
        f.load()
        return ImageOps.exif_transpose(f) or f


@_node("LoadImage")
async def load_image(ctx: NodeContext, image: str) -> tuple[tuple[Any, ...], None]:
    img = _load_image_file(ctx, image)
    rgb = img.convert("RGB")
    if "A" in img.getbands():
        mask = ImageOps.invert(img.getchannel("A"))
    elif img.mode == "P" and "transparency" in img.info:
        mask = ImageOps.invert(img.convert("RGBA").getchannel("A"))
    else:
        mask = Image.new("L", (64, 64), 0)
    return ([rgb], [mask]), None


@_node("LoadImageMask")
async def load_image_mask(ctx: NodeContext, image: str, channel: str) -> tuple[tuple[Any, ...], None]:
    img = _load_image_file(ctx, image)
    band = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}[channel]
    if img.mode != "RGBA":  # like the real node: grey, RGB or palette masks all become RGBA first
        img = img.convert("RGBA")
    mask = img.getchannel(band)
    if band == "A":
        mask = ImageOps.invert(mask)
    return ([mask],), None


def _load_is_changed(ctx: Any, inputs: dict[str, Any]) -> Any:
    if ctx is None:
        return None
    try:
        st = os.stat(_resolve_input(ctx, str(inputs.get("image", ""))))
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_size)


NODE_IMPLS["LoadImage"] = replace(NODE_IMPLS["LoadImage"], is_changed=_load_is_changed)
NODE_IMPLS["LoadImageMask"] = replace(NODE_IMPLS["LoadImageMask"], is_changed=_load_is_changed)


# ---------------------------------------------------------------- outputs


@_node("SaveImage", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def save_image(
    ctx: NodeContext, images: ImageBatch, filename_prefix: str = "ComfyUI", prompt: Any = None, extra_pnginfo: Any = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), await _save_images(ctx, images, filename_prefix, "output", prompt, extra_pnginfo, 4)


@_node("PreviewImage", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def preview_image(
    ctx: NodeContext, images: ImageBatch, prompt: Any = None, extra_pnginfo: Any = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), await _save_images(ctx, images, ctx.temp_prefix(), "temp", prompt, extra_pnginfo, 1)


@_node("SaveAnimatedWEBP", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def save_animated_webp(
    ctx: NodeContext,
    images: ImageBatch,
    filename_prefix: str = "ComfyUI",
    fps: float = 6.0,
    lossless: bool = True,
    quality: int = 80,
    method: str = "default",
    prompt: Any = None,
    extra_pnginfo: Any = None,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    method_level = {"default": 4, "fastest": 0, "slowest": 6}.get(method, 4)
    return _save_animated(ctx, images, filename_prefix, "webp", fps, format="WEBP", lossless=bool(lossless),
                          quality=int(quality), method=method_level)


def _save_animated(
    ctx: NodeContext, images: ImageBatch, prefix: str, ext: str, fps: float, **save_options: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Write every frame into one animated file; the UI payload says ``animated`` as ComfyUI does."""
    w, h = images[0].size
    directory, stem, subfolder = _save_path(ctx, "output", prefix, w, h)
    counter = ctx.next_counter(directory, stem)
    name = f"{stem}_{counter:05}_.{ext}"
    images[0].save(
        os.path.join(directory, name), save_all=True, append_images=images[1:],
        duration=int(1000.0 / float(fps)), **save_options,
    )
    ui = {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": [len(images) != 1]}
    return (), ui


@_node("SaveAnimatedPNG", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def save_animated_png(
    ctx: NodeContext,
    images: ImageBatch,
    filename_prefix: str = "ComfyUI",
    fps: float = 6.0,
    compress_level: int = 4,
    prompt: Any = None,
    extra_pnginfo: Any = None,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return _save_animated(ctx, images, filename_prefix, "png", fps, format="PNG",
                          compress_level=int(compress_level), pnginfo=_png_info(prompt, extra_pnginfo))


@_node("SaveImageWebsocket", output_node=True)
async def save_image_websocket(ctx: NodeContext, images: ImageBatch) -> tuple[tuple[Any, ...], None]:
    total = len(images)
    for step, img in enumerate(images):
        await ctx.progress(step, total, encode_png(img), mime="image/png")
    return (), None


# ---------------------------------------------------------------- the capture test node


@_node("SlowProgressImage", hidden=("unique_id",))
async def slow_progress_image(
    ctx: NodeContext,
    steps: int,
    seconds_per_step: float,
    width: int,
    height: int,
    send_preview: bool,
    send_text: bool,
    seed: int,
    image: ImageBatch | None = None,
    fail_at_step: int = 0,
    unique_id: str = "",
) -> tuple[tuple[Any, ...], None]:
    if image is not None:
        out = image
    else:
        import random

        rng = random.Random(int(seed))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        out = [Image.new("RGB", (int(width), int(height)), colour)]
    preview = encode_jpeg(ImageOps.contain(out[0], (ctx.preview_size, ctx.preview_size))) if send_preview else None
    steps = int(steps)
    for i in range(steps):
        await ctx.sleep(float(seconds_per_step))
        if int(fail_at_step) == i + 1:
            raise RuntimeError(f"SlowProgressImage: deliberate failure at step {i + 1}")
        await ctx.progress(i + 1, steps, preview)
        if send_text:
            await ctx.text(f"step {i + 1}/{steps}")
    return (out,), None


def encode_for_error(value: Any) -> Any:
    """How ``current_inputs`` shows a value: JSON scalars as they are, anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Image.Image):
        w, h = value[0].size
        return f"<IMAGE batch={len(value)} {w}x{h}>"
    return str(value)


_ = encode_png  # re-exported for the executor
