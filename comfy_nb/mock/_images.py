"""Deterministic pictures for the mock sampler: cheap, seeded, and visibly different per parameter.

The look is a function of the generation parameters only:

- the positive prompt text picks the palette (hash → three hues) and the number of shapes;
- the negative prompt nudges the palette;
- the seed places the shapes;
- the sampler picks the shape family (discs, boxes, stripes, rings), the scheduler the gradient angle;
- cfg sets the contrast/saturation, steps the sharpness, the checkpoint the background gradient,
  each LoRA adds a faint pattern weighted by its strength;
- the batch/frame index moves the shapes a little, so a video latent gives a smooth animation.

Pictures are drawn at a small size and scaled up, so even 1024x1024 costs a few milliseconds.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

__all__ = ["GenParams", "encode_jpeg", "encode_png", "generate", "noise_image", "step_preview"]


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class GenParams:
    positive: str = ""
    negative: str = ""
    seed: int = 0
    sampler: str = "euler"
    scheduler: str = "normal"
    cfg: float = 8.0
    steps: int = 20
    model: str = ""
    loras: tuple[tuple[str, float], ...] = field(default_factory=tuple)


_SHAPES = ("disc", "box", "stripe", "ring")


def generate(params: GenParams, width: int, height: int, index: int = 0) -> Image.Image:
    """One picture for these parameters; ``index`` is the batch/frame position."""
    width = max(1, int(width))
    height = max(1, int(height))
    ph = _h(params.positive)
    nh = _h(params.negative)
    base_hue = ((ph % 360) + (_h(params.sampler) % 24)) / 360.0
    hues = [(base_hue + k * 0.13 + (nh % 17) / 400.0) % 1.0 for k in range(3)]
    sat = max(0.15, min(1.0, 0.35 + params.cfg / 16.0))
    palette = [tuple(int(c * 255) for c in colorsys.hsv_to_rgb(h, sat, 0.55 + 0.4 * ((ph >> (8 * i)) % 7) / 6)) for i, h in enumerate(hues)]

    # Draw small, then scale up: the look survives, the cost does not grow with the size.
    scale = max(1, max(width, height) // 96)
    sw, sh = max(1, width // scale), max(1, height // scale)
    img = _gradient(sw, sh, palette[0], palette[1], (_h(params.model) + _h(params.scheduler)) % 4)
    draw = ImageDraw.Draw(img)
    rng = random.Random((params.seed * 1_000_003) ^ (ph & 0xFFFFFFFF) ^ (_h(params.sampler) & 0xFFFF) << 32)
    shape = _SHAPES[_h(params.sampler) % len(_SHAPES)]
    count = 3 + (ph % 5) + min(params.steps, 60) // 15
    drift = index * max(1, min(sw, sh) // 24)
    for k in range(count):
        cx = (rng.randrange(sw) + drift * (1 if k % 2 else -1)) % max(1, sw)
        cy = rng.randrange(sh)
        r = max(1, int(rng.uniform(0.08, 0.3) * min(sw, sh)))
        colour = palette[(k + 1) % 3] if k % 3 else palette[2]
        box = (cx - r, cy - r, cx + r, cy + r)
        if shape == "disc":
            draw.ellipse(box, fill=colour)
        elif shape == "box":
            draw.rectangle(box, fill=colour)
        elif shape == "ring":
            draw.ellipse(box, outline=colour, width=max(1, r // 3))
        else:
            draw.line((cx - r, 0, cx + r, sh), fill=colour, width=max(1, r // 2))
    for name, strength in params.loras:
        if strength:
            _lora_pattern(draw, sw, sh, _h(name), strength)
    if params.steps < 8:
        img = img.filter(ImageFilter.GaussianBlur(radius=max(0.5, (8 - params.steps) / 3)))
    img = ImageEnhance.Contrast(img).enhance(max(0.3, min(2.0, 0.6 + params.cfg / 12.0)))
    if (sw, sh) != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    return img


def _gradient(w: int, h: int, a: tuple[int, ...], b: tuple[int, ...], direction: int) -> Image.Image:
    ramp = Image.linear_gradient("L")  # 256x256, black at the top
    if direction % 2:
        ramp = ramp.rotate(90)
    if direction >= 2:
        ramp = ImageOps.invert(ramp)
    mask = ramp.resize((w, h))
    return Image.composite(Image.new("RGB", (w, h), b), Image.new("RGB", (w, h), a), mask)


def _lora_pattern(draw: ImageDraw.ImageDraw, w: int, h: int, seed: int, strength: float) -> None:
    rng = random.Random(seed)
    colour = tuple(rng.randrange(256) for _ in range(3))
    step = max(2, int(6 + rng.randrange(8) / max(0.1, abs(strength))))
    width = max(1, int(abs(strength)))
    for x in range(-h, w, step):
        draw.line((x, 0, x + h, h), fill=colour, width=width)


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    """Seeded coarse noise: what a sampler preview looks like at step 0."""
    sw, sh = max(1, min(width, 32)), max(1, min(height, 32))
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(sw * sh * 3))
    return Image.frombytes("RGB", (sw, sh), data).resize((width, height), Image.Resampling.NEAREST)


def step_preview(final: Image.Image, noise: Image.Image, step: int, steps: int, size: int) -> bytes:
    """A JPEG of the picture ``step/steps`` of the way from noise to ``final``, fitted to ``size``."""
    small = final if max(final.size) <= 64 else final.resize(_fit(final.size, 64))
    nz = noise.resize(small.size) if noise.size != small.size else noise
    frame = Image.blend(nz, small, min(1.0, step / max(1, steps)))
    return encode_jpeg(ImageOps.contain(frame, (size, size)))


def _fit(size: tuple[int, int], limit: int) -> tuple[int, int]:
    w, h = size
    f = limit / max(w, h)
    return max(1, int(w * f)), max(1, int(h * f))


def encode_jpeg(img: Image.Image, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(img: Image.Image, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()
