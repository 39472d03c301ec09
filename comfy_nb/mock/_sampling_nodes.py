"""The mock's diffusion path: conditioning, latents, the samplers and VAE encode/decode, with ComfyUI's
refusals (an invalid CLIP or VAE, a latent the model cannot take) in its own words."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PIL import Image, ImageChops, ImageFilter

from ..protocol import MODEL_FAMILIES
from ._images import GenParams, generate, noise_image, step_preview
from ._nodes import (
    ClipRef,
    ClipVisionRef,
    Conditioning,
    ImageBatch,
    Latent,
    ModelRef,
    NodeContext,
    VaeRef,
    multiple_of_8,
    register,
    scale_image,
)

__all__ = ["CLIP_INVALID", "VAE_INVALID"]

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



# ---------------------------------------------------------------- conditioning


@register("CLIPTextEncode")
async def clip_text_encode(ctx: NodeContext, text: str, clip: ClipRef | None) -> tuple[tuple[Any, ...], None]:
    if clip is None:
        raise RuntimeError(CLIP_INVALID)
    return ([Conditioning(str(text), clip)],), None


@register("FluxGuidance")
async def flux_guidance(ctx: NodeContext, conditioning: Any, guidance: float) -> tuple[tuple[Any, ...], None]:
    return (conditioning,), None


@register("ConditioningZeroOut")
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


@register("InpaintModelConditioning")
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


@register("SVD_img2vid_Conditioning")
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
    first = scale_image(init_image[0], multiple_of_8(width), multiple_of_8(height), "bilinear", "center")
    pos = [Conditioning(f"svd motion={motion_bucket_id} fps={fps}", None, init_image=first)]
    neg = [Conditioning("", None)]
    latent = Latent(multiple_of_8(width), multiple_of_8(height), int(video_frames), None, None, video=True)
    return (pos, neg, latent), None


# ---------------------------------------------------------------- latents


@register("EmptyLatentImage")
async def empty_latent(ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[tuple[Any, ...], None]:
    return (Latent(multiple_of_8(width), multiple_of_8(height), int(batch_size)),), None


@register("EmptySD3LatentImage")
async def empty_sd3_latent(ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[tuple[Any, ...], None]:
    return (Latent(multiple_of_8(width), multiple_of_8(height), int(batch_size)),), None


@register("EmptyHunyuanLatentVideo")
async def empty_hunyuan_video(
    ctx: NodeContext, width: int, height: int, length: int, batch_size: int = 1
) -> tuple[tuple[Any, ...], None]:
    frames = ((int(length) - 1) // 4) * 4 + 1
    return (Latent(multiple_of_8(width), multiple_of_8(height), frames * int(batch_size), video=True, frames=frames),), None


def _encode(pixels: ImageBatch, vae: VaeRef) -> Latent:
    _check_vae(vae)
    w, h = pixels[0].size
    w8, h8 = multiple_of_8(w), multiple_of_8(h)
    imgs = tuple(p.convert("RGB").crop((0, 0, w8, h8)) if p.size != (w8, h8) else p.convert("RGB") for p in pixels)
    family = MODEL_FAMILIES.get(vae.family or "sd15", MODEL_FAMILIES["sd15"])
    # a video VAE encodes the batch as the frames of one video (a 5-D latent)
    frames = len(imgs) if family.video else 1
    return Latent(w8, h8, len(imgs), imgs, video=family.video, channels=family.latent_channels, frames=frames)


@register("VAEEncode")
async def vae_encode(ctx: NodeContext, pixels: ImageBatch, vae: VaeRef) -> tuple[tuple[Any, ...], None]:
    return (_encode(pixels, vae),), None


@register("VAEEncodeForInpaint")
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


@register("SetLatentNoiseMask")
async def set_latent_noise_mask(ctx: NodeContext, samples: Latent, mask: ImageBatch) -> tuple[tuple[Any, ...], None]:
    return (replace(samples, noise_mask=tuple(m.resize((samples.width, samples.height)) for m in mask)),), None


def _latent_resize(samples: Latent, width: int, height: int, method: str, crop: str) -> Latent:
    if width == 0 and height == 0:
        return samples
    if width == 0:
        width = round(samples.width * height / samples.height)
    elif height == 0:
        height = round(samples.height * width / samples.width)
    width, height = multiple_of_8(width), multiple_of_8(height)
    imgs = None if samples.images is None else tuple(scale_image(i, width, height, method, crop) for i in samples.images)
    masks = None if samples.noise_mask is None else tuple(m.resize((width, height)) for m in samples.noise_mask)
    return replace(samples, width=width, height=height, images=imgs, noise_mask=masks)


@register("LatentUpscale")
async def latent_upscale(
    ctx: NodeContext, samples: Latent, upscale_method: str, width: int, height: int, crop: str
) -> tuple[tuple[Any, ...], None]:
    return (_latent_resize(samples, int(width), int(height), upscale_method, crop),), None


@register("LatentUpscaleBy")
async def latent_upscale_by(
    ctx: NodeContext, samples: Latent, upscale_method: str, scale_by: float
) -> tuple[tuple[Any, ...], None]:
    w = round(samples.width * float(scale_by))
    h = round(samples.height * float(scale_by))
    return (_latent_resize(samples, w, h, upscale_method, "disabled"),), None


@register("RepeatLatentBatch")
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


@register("KSampler")
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


@register("KSamplerAdvanced")
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


@register("VAEDecode")
async def vae_decode(ctx: NodeContext, samples: Latent, vae: VaeRef) -> tuple[tuple[Any, ...], None]:
    _check_vae(vae)
    if samples.images is None:
        grey = Image.new("RGB", (samples.width, samples.height), (92, 88, 84))
        return ([grey] * samples.count,), None
    return (list(samples.images),), None

