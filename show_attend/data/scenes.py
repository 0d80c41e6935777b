"""The synthetic shapes' world: the objects (colour, shape, size, box), the words that name them,
and the rendering of a scene. ``synthetic.py`` writes the captions and the dataset."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Optional

import numpy as np
from PIL import Image, ImageDraw

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "white", "purple")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")

# Nominal RGB of each colour; rendered with a small per-object jitter.
COLOR_RGB: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "red": (220, 40, 40),
    "green": (40, 185, 60),
    "blue": (45, 85, 235),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "purple": (155, 55, 205),
})
# Every word that names a size; the first one is the canonical word.
SIZE_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "small": ("small", "little"),
    "large": ("large", "big"),
})
# Side of a shape's bounding box as a fraction of the image side (clearly distinct ranges).
SIZE_RANGE: Mapping[str, tuple[float, float]] = MappingProxyType({
    "small": (0.18, 0.24),
    "large": (0.35, 0.45),
})
BACKGROUND_GRAY = (95, 125)  # background gray level range (inclusive, exclusive)
BACKGROUND_GRADIENT = 10.0  # at most +- this many gray levels of soft, linear "lighting"
COLOR_JITTER = 12  # per-object, per-channel colour jitter (+-)
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down (anti-aliasing)
# Surface of the shapes. "flat": one colour per shape. "grating": the colour's brightness modulated
# by a sinusoidal grating of random period and orientation (hue kept, so the colour word holds).
# Flat shapes are unlike the textured objects ImageNet features were learned on: VGG16's block5
# responds to their contours, so its strongest cells often lie just outside a large shape.
TEXTURES: tuple[str, ...] = ("flat", "grating")
GRATING_PERIOD = (0.05, 0.09)  # grating period as a fraction of the image side
GRATING_CONTRAST = 0.3  # brightness x (1 +- this)

Object = dict[str, Any]  # {"color", "shape", "size", "box": [x0, y0, x1, y1]} (x1, y1 exclusive)


def object_word_kind(word: str) -> Optional[str]:
    """``"color"``, ``"shape"`` or ``"size"`` for a word that names an object, else None."""
    if word in COLORS:
        return "color"
    if word in SHAPES:
        return "shape"
    if any(word in words for words in SIZE_WORDS.values()):
        return "size"
    return None


def size_of_word(word: str) -> Optional[str]:
    """The size ("small" / "large") a size word (``"little"``, ``"big"``, ...) means, else None."""
    for size, words in SIZE_WORDS.items():
        if word in words:
            return size
    return None


# ------------------------------------------------------------------------------------- rendering
def _margins(image_size: int) -> tuple[int, int, int]:
    """(border margin, gap between boxes, min horizontal distance of centres), in pixels."""
    return max(2, round(0.03 * image_size)), max(2, round(0.04 * image_size)), \
        max(4, round(0.15 * image_size))


def _place(rng: np.random.Generator, sides: list[int], image_size: int,
           tries: int = 128) -> Optional[list[list[int]]]:
    """Random non-overlapping boxes with the given sides, centres apart horizontally; or None.

    Each box is the first of ``tries`` random candidates that keeps the gap to the boxes placed so
    far (vectorised rejection sampling).
    """
    border, gap, min_dx = _margins(image_size)
    boxes: list[list[int]] = []
    for side in sides:
        hi = image_size - border - side + 1
        if hi <= border:
            return None
        x0 = rng.integers(border, hi, size=tries)
        y0 = rng.integers(border, hi, size=tries)
        ok = np.ones(tries, dtype=bool)
        for ox0, oy0, ox1, oy1 in boxes:
            apart = (x0 + side + gap <= ox0) | (ox1 + gap <= x0) | (y0 + side + gap <= oy0) | \
                (oy1 + gap <= y0)
            ok &= apart & (np.abs(x0 + side / 2 - (ox0 + ox1) / 2) >= min_dx)
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            return None
        k = int(hits[0])
        boxes.append([int(x0[k]), int(y0[k]), int(x0[k]) + side, int(y0[k]) + side])
    return boxes


def _shape_mask(shape: str, side: int) -> np.ndarray:
    """Anti-aliased coverage (0..1, float32) of a shape filling a ``side`` x ``side`` box."""
    big = side * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse([0, 0, big - 1, big - 1], fill=255)
    elif shape == "square":
        draw.rectangle([0, 0, big - 1, big - 1], fill=255)
    elif shape == "triangle":  # pointing up, base on the bottom edge
        draw.polygon([(0, big - 1), (big - 1, big - 1), ((big - 1) / 2, 0)], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")
    small = mask.reduce(SUPERSAMPLE)  # box filter: exact coverage, stays inside the box
    return np.asarray(small, dtype=np.float32) / 255.0


def check_texture(texture: str) -> None:
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; use one of {TEXTURES}")


def _grating(rng: np.random.Generator, side: int, image_size: int) -> np.ndarray:
    """(side, side, 1) brightness factors 1 + c sin(2 pi (x cos t + y sin t) / period + phase)."""
    period = rng.uniform(*GRATING_PERIOD) * image_size
    theta, phase = rng.uniform(0.0, np.pi), rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    wave = np.sin(2.0 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period + phase)
    return (1.0 + GRATING_CONTRAST * wave)[..., None].astype(np.float32)


def render_scene(rng: np.random.Generator, image_size: int = 112,
                 num_objects: Optional[int] = None, texture: str = "flat") -> tuple[Image.Image, list[Object]]:
    """Draw 1 to 3 shapes on a gray background; return the RGB image and its objects.

    ``texture``: ``"flat"`` shapes or ``"grating"`` ones (see ``TEXTURES``); with ``"flat"`` the
    random stream, hence every image, is the same as before the option existed.

    Boxes are tight pixel boxes ``[x0, y0, x1, y1]`` (x1/y1 exclusive) that stay inside the image,
    keep a gap between each other, and whose centres are at least 15% of the side apart
    horizontally (so "left to right" is always well defined).
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    check_texture(texture)
    n = int(rng.integers(1, 4)) if num_objects is None else num_objects
    if not 1 <= n <= 3:
        raise ValueError(f"num_objects must be 1, 2 or 3, got {n}")
    while True:  # resample sizes when a layout does not fit (e.g. three large shapes)
        sizes = [SIZES[int(rng.integers(len(SIZES)))] for _ in range(n)]
        sides = [int(round(rng.uniform(*SIZE_RANGE[s]) * image_size)) for s in sizes]
        order = sorted(range(n), key=lambda k: -sides[k])  # the largest first: fits more often
        for _ in range(8):  # several layouts before giving up on these sizes
            placed = _place(rng, [sides[k] for k in order], image_size)
            if placed is not None:
                break
        if placed is not None:
            boxes = [placed[order.index(k)] for k in range(n)]
            break
    objects = [{"color": COLORS[int(rng.integers(len(COLORS)))],
                "shape": SHAPES[int(rng.integers(len(SHAPES)))],
                "size": size, "box": box} for size, box in zip(sizes, boxes)]

    # A gray background with a gentle linear gradient in a random direction (no per-pixel noise:
    # it would make the PNGs large and slow to write, and the encoder does not need it).
    gray = float(rng.integers(*BACKGROUND_GRAY))
    angle = rng.uniform(0.0, 2.0 * np.pi)
    amplitude = rng.uniform(0.0, BACKGROUND_GRADIENT)
    ramp = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    light = amplitude * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / np.sqrt(2)
    canvas = np.empty((image_size, image_size, 3), dtype=np.float32)
    canvas[...] = (gray + light)[..., None]
    for obj in objects:
        x0, y0, x1, y1 = obj["box"]
        alpha = _shape_mask(obj["shape"], x1 - x0)[..., None]
        rgb = np.asarray(COLOR_RGB[obj["color"]], np.float32) + \
            rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3).astype(np.float32)
        surface = rgb if texture == "flat" else rgb * _grating(rng, x1 - x0, image_size)  # (3,) | (s, s, 3)
        region = canvas[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1] = region * (1.0 - alpha) + surface * alpha
    image = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    return image, objects
