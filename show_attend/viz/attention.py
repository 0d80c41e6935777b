"""Attention heatmaps over the generated words (Figure 3 of Show, Attend and Tell).

The attention of step t is a distribution over the g x g cells of the encoder's feature grid
(g = 7 or 14). To draw it on the photo, the map is upsampled from the *actual* grid size onto the
region of the photo the encoder saw (``ImageTransform.crop_box``: the whole photo for ``squash``,
the central square for ``center_crop``), with cell centres landing on cell centres
(``align_corners=False``; for an encoder whose cells do not tile its input, a ResNet's or
Xception's, on the centres of their receptive fields: ``geometry=encoder_geometry(cfg.encoder)``). Nothing is hard-coded to 14x14, so a 7x7 model's map covers the whole
region, and a non-square photo is not shifted.

All upsampling is separable: an (n_out, g) weight matrix per axis, ``out = Wy @ alpha @ Wx.T``.

    fig = plot_attention(image, words, alphas, betas, crop_box=transform.crop_box(*image.size))
    save_attention_figure(fig, "attention.png")
    save_attention_gif(image, words, alphas, betas, "attention.gif")

Only the object-oriented matplotlib API is used (``matplotlib.figure.Figure``), never pyplot's
global state, so this works headless (Agg) and in notebooks alike.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from ..model.geometry import DEFAULT_SIGMA, GridGeometry, as_grid, as_grids, axis_weights, separable, to_numpy

CropBox = tuple[float, float, float, float]
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def attention_overlay(image: Union[Image.Image, tuple[int, int]], alpha: Any,
                      crop_box: Optional[Sequence[float]] = None, mode: str = "bilinear",
                      sigma: float = DEFAULT_SIGMA, geometry: Optional[GridGeometry] = None) -> np.ndarray:
    """The attention map of one step as a full-photo heatmap (H, W).

    Args:
        image: the original photo (any size and aspect), or its size as (width, height).
        alpha: (g, g) or (g*g,) attention weights.
        crop_box: (x0, y0, x1, y1) in original pixels, the region the encoder saw, from
            ``ImageTransform(size, mode).crop_box(w, h)``; None = the whole photo (``squash``).
        mode, sigma, geometry: as in :func:`show_attend.model.geometry.upsample_attention`.

    Returns:
        (H, W) array: the map stretched over exactly ``crop_box`` (cell centres on cell centres,
        fractional boxes handled per pixel centre), zero outside it.
    """
    w, h = image.size if isinstance(image, Image.Image) else (int(image[0]), int(image[1]))
    a = as_grid(alpha)
    g = a.shape[0]
    x0, y0, x1, y1 = (0.0, 0.0, float(w), float(h)) if crop_box is None else map(float, crop_box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop_box must have x1 > x0 and y1 > y0, got {crop_box}")
    px = np.arange(w, dtype=np.float64) + 0.5  # pixel centres, original coordinates
    py = np.arange(h, dtype=np.float64) + 0.5
    if geometry is None or geometry.uniform:
        ux = (px - x0) / (x1 - x0) * g - 0.5
        uy = (py - y0) / (y1 - y0) * g - 0.5
    else:
        geometry.check(g)
        ux, uy = geometry.cells((px - x0) / (x1 - x0)), geometry.cells((py - y0) / (y1 - y0))
    wx = axis_weights(ux, g, mode, sigma) * ((px >= x0) & (px < x1))[:, None]
    wy = axis_weights(uy, g, mode, sigma) * ((py >= y0) & (py < y1))[:, None]
    return separable(wy, a, wx)


# --------------------------------------------------------------------------- rendering
def _rgb_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _display_image(image: Image.Image, crop_box: Optional[Sequence[float]],
                   max_side: Optional[int]) -> tuple[Image.Image, Optional[CropBox]]:
    """Downscale the photo for display (keeps figures and GIFs small), scaling the crop box along."""
    image = image.convert("RGB")
    w, h = image.size
    if max_side is None or max(w, h) <= max_side:
        return image, None if crop_box is None else tuple(map(float, crop_box))
    scale = max_side / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = image.resize((nw, nh), Image.BICUBIC)
    if crop_box is None:
        return small, None
    sx, sy = nw / w, nh / h
    x0, y0, x1, y1 = map(float, crop_box)
    return small, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def _normalized_heats(image: Image.Image, grids: np.ndarray, crop_box: Optional[Sequence[float]],
                      upsample: str, sigma: float, normalize: str,
                      geometry: Optional[GridGeometry] = None) -> list[np.ndarray]:
    if normalize not in ("per_word", "global"):
        raise ValueError(f"normalize must be per_word or global, got {normalize!r}")
    heats = [attention_overlay(image, a, crop_box, mode=upsample, sigma=sigma, geometry=geometry) for a in grids]
    if normalize == "global":
        top = max((float(hm.max()) for hm in heats), default=0.0)
        return [hm / top if top > 0 else hm for hm in heats]
    # Min-max per word over the region the encoder saw (outside it stays 0); a flat map has no
    # preferred region and is drawn as 0.
    if not heats:
        return heats
    seen = attention_overlay(image, np.ones_like(grids[0]), crop_box, mode="nearest") > 0
    if not seen.any():
        return [np.zeros_like(hm) for hm in heats]
    out = []
    for hm in heats:
        lo, hi = float(hm[seen].min()), float(hm[seen].max())
        if hi - lo <= 1e-12 * max(abs(hi), 1e-30):
            out.append(np.zeros_like(hm))
        else:
            out.append(np.where(seen, (hm - lo) / (hi - lo), 0.0))
    return out


def blend_heatmap(rgb: np.ndarray, heat: np.ndarray, cmap: str = "jet",
                  overlay_alpha: float = 0.6) -> np.ndarray:
    """(H, W, 3) photo in [0, 1] + (H, W) heat in [0, 1] -> (H, W, 3) blended image in [0, 1].

    ``cmap="gray"`` gives the paper's look: the photo darkened where attention is low.
    """
    colors = colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]
    if cmap in ("gray", "grey", "Greys_r"):
        colors = rgb * np.clip(heat, 0.0, 1.0)[..., None]  # attended regions stay bright
    return np.clip((1.0 - overlay_alpha) * rgb + overlay_alpha * colors, 0.0, 1.0)


def _beta_values(betas: Any, n: int) -> Optional[np.ndarray]:
    """(T,) scalar gates; a vector gate (T, D) is summarised by its mean."""
    if betas is None:
        return None
    b = to_numpy(betas)
    if b.ndim == 2:
        b = b.mean(axis=1)
    b = b.reshape(-1)
    if b.size != n:
        raise ValueError(f"{n} words but {b.size} betas")
    return b


def word_label(word: str, beta: Optional[float]) -> str:
    """The panel label: ``dog (β=0.42)``, or just the word without a gate."""
    return word if beta is None else f"{word} (β={beta:.2f})"


def plot_attention(image: Image.Image, words: Sequence[str], alphas: Any, betas: Any = None,
                   crop_box: Optional[Sequence[float]] = None, *, cmap: str = "jet",
                   overlay_alpha: float = 0.6, upsample: str = "bilinear",
                   sigma: float = DEFAULT_SIGMA, ncols: int = 5, title: Optional[str] = None,
                   normalize: str = "per_word", panel_width: float = 2.4, dpi: int = 100,
                   max_side: Optional[int] = 512, fontsize: float = 11.0,
                   geometry: Optional[GridGeometry] = None, word_boxes: Optional[Sequence[Any]] = None) -> Figure:
    """The paper's Figure 3 layout: the photo (titled with the sentence), then one panel per word.

    Args:
        image: the original photo (PIL, any size and aspect).
        words: the T generated words (the caller decides whether ``<end>`` is shown).
        alphas: (T, g, g) or (T, g*g) attention weights, alpha of step t used to emit word t.
        betas: (T,) gate values (or (T, D) for a vector gate, shown as its mean), or None.
        crop_box: region of the photo the encoder saw (``ImageTransform.crop_box(w, h)``);
            None = the whole photo.
        cmap: matplotlib colormap of the heat (``jet``, ``viridis``, ... or ``gray``: paper look).
        overlay_alpha: opacity of the heat layer.
        upsample: ``bilinear``, ``gaussian`` or ``nearest`` (see :func:`show_attend.model.geometry.upsample_attention`).
        ncols: panels per row.
        normalize: ``per_word`` (each map min-max scaled to [0, 1]; a flat, uniform map is drawn
            as 0) or ``global`` (divided by the largest value over all words, so panels are
            comparable and a uniform map shows as uniformly lukewarm).
        panel_width: inches per panel; dpi: figure resolution; max_side: photos larger than this
            are downscaled for display (None keeps full resolution).
        geometry: where the encoder's cells lie (``model.geometry.encoder_geometry``); None: they tile
            the crop box (VGG).
        word_boxes: per word None or an object with ``boxes`` ((x0, y0, x1, y1) in the photo's pixels)
            and ``mass`` (the word's attention inside them), e.g. Flickr30k Entities' human boxes
            (``evaluation.entities_grounding.word_boxes``): drawn over the word's panel, the mass in its label.

    Returns:
        A ``matplotlib.figure.Figure`` (not attached to pyplot); save with
        :func:`save_attention_figure`.
    """
    words = [str(w) for w in words]
    grids = as_grids(alphas)
    if len(words) != grids.shape[0]:
        raise ValueError(f"{len(words)} words but {grids.shape[0]} attention maps")
    beta = _beta_values(betas, len(words))
    if word_boxes is not None and len(word_boxes) != len(words):
        raise ValueError(f"{len(words)} words but {len(word_boxes)} word boxes")
    disp, box = _display_image(image, crop_box, max_side)
    rgb = _rgb_array(disp)
    heats = _normalized_heats(disp, grids, box, upsample, sigma, normalize, geometry)

    n_panels = 1 + len(words)
    ncols = max(1, min(int(ncols), n_panels))
    nrows = math.ceil(n_panels / ncols)
    w, h = disp.size
    label_space = 0.45 * fontsize / 11.0
    panel_height = panel_width * h / w + label_space
    fig = Figure(figsize=(panel_width * ncols, panel_height * nrows + (0.5 if title else 0.0)),
                 dpi=dpi, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()

    sentence = " ".join(words)
    chars_per_line = max(12, int(panel_width * 72 / (0.6 * fontsize)))
    axes[0].imshow(rgb)
    axes[0].set_title("\n".join(textwrap.wrap(sentence, chars_per_line)) or " ", fontsize=fontsize)
    for t, word in enumerate(words):
        ax = axes[t + 1]
        ax.imshow(blend_heatmap(rgb, heats[t], cmap=cmap, overlay_alpha=overlay_alpha))
        label = word_label(word, None if beta is None else float(beta[t]))
        found = word_boxes[t] if word_boxes is not None else None
        if found is not None:
            _draw_boxes(ax, found.boxes, disp.size[0] / image.size[0], disp.size[1] / image.size[1])
            label += f"\n{found.mass:.2f} in box"
        ax.set_title(label, fontsize=fontsize)
    if title:
        fig.suptitle(title, fontsize=fontsize + 2)
    return fig


def _draw_boxes(ax: Any, boxes: Sequence[Sequence[float]], sx: float, sy: float) -> None:
    """Human boxes (photo pixels) as white-edged rectangles on a panel drawn at scale (sx, sy)."""
    from matplotlib.patches import Rectangle

    for x0, y0, x1, y1 in boxes:  # imshow puts pixel i's centre at i: its left edge at -0.5
        for color, width in (("black", 3.0), ("white", 1.5)):
            ax.add_patch(Rectangle((x0 * sx - 0.5, y0 * sy - 0.5), (x1 - x0) * sx, (y1 - y0) * sy, fill=False,
                                   edgecolor=color, linewidth=width))


def save_attention_figure(fig: Figure, path: Union[str, Path], dpi: Optional[int] = None) -> Path:
    """Write a figure as PNG, PDF or SVG (chosen by the suffix); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"unsupported figure format {path.suffix!r}; use one of {FIGURE_SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi if dpi is not None else fig.dpi, bbox_inches="tight",
                pad_inches=0.05, facecolor="white")
    return path


def render_attention(image: Image.Image, words: Sequence[str], alphas: Any, betas: Any,
                     path: Union[str, Path], crop_box: Optional[Sequence[float]] = None,
                     dpi: Optional[int] = None, **kwargs: Any) -> Path:
    """:func:`plot_attention` + :func:`save_attention_figure` in one call."""
    fig = plot_attention(image, words, alphas, betas, crop_box, **kwargs)
    return save_attention_figure(fig, path, dpi=dpi)


def _font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, has the β glyph); PIL's default font otherwise."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except (OSError, ValueError, ImportError):
        pass
    try:
        return ImageFont.load_default(size=size)  # scalable font, Pillow >= 10.1
    except TypeError:
        return ImageFont.load_default()


def save_attention_gif(image: Image.Image, words: Sequence[str], alphas: Any, betas: Any,
                       path: Union[str, Path], crop_box: Optional[Sequence[float]] = None, *,
                       duration_ms: int = 800, cmap: str = "jet", overlay_alpha: float = 0.6,
                       upsample: str = "bilinear", sigma: float = DEFAULT_SIGMA,
                       normalize: str = "per_word", max_side: Optional[int] = 384,
                       loop: int = 0, geometry: Optional[GridGeometry] = None) -> Path:
    """An animated GIF, one frame per word: the heat overlay, the word (β) and the sentence so far.

    Arguments as in :func:`plot_attention`; ``duration_ms`` per frame, ``loop=0`` loops forever.
    """
    path = Path(path)
    words = [str(w) for w in words]
    grids = as_grids(alphas)
    if len(words) != grids.shape[0]:
        raise ValueError(f"{len(words)} words but {grids.shape[0]} attention maps")
    if not words:
        raise ValueError("no words to animate")
    beta = _beta_values(betas, len(words))
    disp, box = _display_image(image, crop_box, max_side)
    rgb = _rgb_array(disp)
    heats = _normalized_heats(disp, grids, box, upsample, sigma, normalize, geometry)

    w, h = disp.size
    size = max(12, w // 22)
    font, small = _font(size), _font(max(10, int(size * 0.8)))
    band = int(size * 1.4 + size * 1.2 * 2) + 8
    frames = []
    for t, word in enumerate(words):
        over = (blend_heatmap(rgb, heats[t], cmap, overlay_alpha) * 255.0).round().astype(np.uint8)
        frame = Image.new("RGB", (w, h + band), "white")
        frame.paste(Image.fromarray(over), (0, 0))
        draw = ImageDraw.Draw(frame)
        draw.text((6, h + 4), word_label(word, None if beta is None else float(beta[t])),
                  fill=(0, 0, 0), font=font)
        so_far = textwrap.wrap(" ".join(words[: t + 1]), max(10, int(w / (0.55 * size * 0.8))))
        for i, line in enumerate(so_far[-2:]):
            draw.text((6, h + 4 + int(size * 1.4) + i * int(size * 1.2)), line,
                      fill=(90, 90, 90), font=small)
        # Our own fast palette per frame (PIL's default RGB -> P conversion is ~10x slower).
        frames.append(frame.quantize(colors=255, method=Image.Quantize.FASTOCTREE))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(duration_ms), loop=int(loop), disposal=1)
    return path
