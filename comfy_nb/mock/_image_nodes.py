"""The mock's picture nodes: image operations, primitives, loading input images, the save and preview
outputs (files named, confined and numbered as ComfyUI does) and ``SlowProgressImage``, the capture test node."""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import replace
from typing import Any

from PIL import Image, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

from ._images import encode_jpeg, encode_png
from ._nodes import NODE_IMPLS, ImageBatch, NodeContext, UpscaleModelRef, register, scale_image

__all__: list[str] = []

def _rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 255, (color >> 8) & 255, color & 255



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



# ---------------------------------------------------------------- images


@register("EmptyImage")
async def empty_image(
    ctx: NodeContext, width: int, height: int, batch_size: int = 1, color: int = 0
) -> tuple[tuple[Any, ...], None]:
    img = Image.new("RGB", (int(width), int(height)), _rgb(int(color)))
    return ([img] * int(batch_size),), None


@register("ImageInvert")
async def image_invert(ctx: NodeContext, image: ImageBatch) -> tuple[tuple[Any, ...], None]:
    return ([ImageOps.invert(i.convert("RGB")) for i in image],), None


@register("ImageBlur")
async def image_blur(ctx: NodeContext, image: ImageBatch, blur_radius: int, sigma: float) -> tuple[tuple[Any, ...], None]:
    if int(blur_radius) == 0:
        return (image,), None
    radius = min(float(sigma), float(blur_radius))
    return ([i.filter(ImageFilter.GaussianBlur(radius=radius)) for i in image],), None


@register("ImageScale")
async def image_scale(
    ctx: NodeContext, image: ImageBatch, upscale_method: str, width: int, height: int, crop: str
) -> tuple[tuple[Any, ...], None]:
    return ([scale_image(i, int(width), int(height), upscale_method, crop) for i in image],), None


@register("ImageScaleBy")
async def image_scale_by(
    ctx: NodeContext, image: ImageBatch, upscale_method: str, scale_by: float
) -> tuple[tuple[Any, ...], None]:
    out = []
    for i in image:
        w, h = i.size
        out.append(scale_image(i, max(1, round(w * float(scale_by))), max(1, round(h * float(scale_by))), upscale_method, "disabled"))
    return (out,), None


@register("ImageUpscaleWithModel")
async def image_upscale_with_model(
    ctx: NodeContext, upscale_model: UpscaleModelRef, image: ImageBatch
) -> tuple[tuple[Any, ...], None]:
    out = []
    for i in image:
        w, h = i.size
        big = i.resize((w * upscale_model.scale, h * upscale_model.scale), Image.Resampling.LANCZOS)
        out.append(big.filter(ImageFilter.UnsharpMask(radius=2, percent=60)))
    return (out,), None


@register("ImageQuantize")
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


@register("GetImageSize", hidden=("unique_id",))
async def get_image_size(ctx: NodeContext, image: ImageBatch, unique_id: str = "") -> tuple[tuple[Any, ...], None]:
    w, h = image[0].size
    await ctx.text(f"width: {w}, height: {h}\n batch size: {len(image)}")
    return (w, h, len(image)), None


@register("PrimitiveInt")
async def primitive_int(ctx: NodeContext, value: int) -> tuple[tuple[Any, ...], None]:
    return (int(value),), None


@register("PrimitiveFloat")
async def primitive_float(ctx: NodeContext, value: float) -> tuple[tuple[Any, ...], None]:
    return (float(value),), None


@register("PrimitiveString")
async def primitive_string(ctx: NodeContext, value: str) -> tuple[tuple[Any, ...], None]:
    return (str(value),), None


def _load_image_file(ctx: NodeContext, name: str) -> Image.Image:
    with Image.open(_resolve_input(ctx, name)) as f:
        f.load()
        return ImageOps.exif_transpose(f) or f


@register("LoadImage")
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


@register("LoadImageMask")
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


@register("SaveImage", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def save_image(
    ctx: NodeContext, images: ImageBatch, filename_prefix: str = "ComfyUI", prompt: Any = None, extra_pnginfo: Any = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), await _save_images(ctx, images, filename_prefix, "output", prompt, extra_pnginfo, 4)


@register("PreviewImage", output_node=True, hidden=("prompt", "extra_pnginfo"))
async def preview_image(
    ctx: NodeContext, images: ImageBatch, prompt: Any = None, extra_pnginfo: Any = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), await _save_images(ctx, images, ctx.temp_prefix(), "temp", prompt, extra_pnginfo, 1)


@register("SaveAnimatedWEBP", output_node=True, hidden=("prompt", "extra_pnginfo"))
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


@register("SaveAnimatedPNG", output_node=True, hidden=("prompt", "extra_pnginfo"))
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


@register("SaveImageWebsocket", output_node=True)
async def save_image_websocket(ctx: NodeContext, images: ImageBatch) -> tuple[tuple[Any, ...], None]:
    total = len(images)
    for step, img in enumerate(images):
        await ctx.progress(step, total, encode_png(img), mime="image/png")
    return (), None


# ---------------------------------------------------------------- the capture test node


@register("SlowProgressImage", hidden=("unique_id",))
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
