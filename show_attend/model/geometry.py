"""Attention-map geometry: from the decoder's alpha (L = g*g cells) to a map over the image.

The attention of step t is a distribution over the g x g cells of the encoder's feature grid
(g = 7 or 14; cell i = row * g + col). Drawing it (``show_attend.viz``) and scoring whether it
lands on an object (``show_attend.evaluation.grounding``) both need the same geometry: cell
centres on cell centres (``align_corners=False``), a grid that spans the region the encoder saw.

Where the cells lie comes from the encoder (:class:`GridGeometry`, from ``model.specs``): VGG's
cells tile the input (cell c centred at (c + 0.5) / g of the side, the layout every function here
assumes when no geometry is given); a ResNet's or Xception's are shifted by their stems, and a grid
pooled from a map whose side it does not divide has unequal cells. Positions are then mapped to cell
units piecewise-linearly through the cells' real centres.

All upsampling is separable: an (n_out, g) weight matrix per axis, ``out = Wy @ alpha @ Wx.T``.
Numpy only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .specs import encoder_spec, resolve_tap

UPSAMPLE_MODES = ("bilinear", "gaussian", "nearest")
VGG16_STRIDE = 16  # block5_conv3 of an S x S input is S/16 x S/16
DEFAULT_SIGMA = 0.6  # gaussian mode: standard deviation in grid cells


# --------------------------------------------------------------------------- array helpers
def to_numpy(x: Any) -> np.ndarray:
    """An array from a numpy array, list, or torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def as_grid(alpha: Any) -> np.ndarray:
    """One attention map, (g, g) or flat (g*g,), as a (g, g) array (row-major: row = y)."""
    a = to_numpy(alpha)
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        return a
    if a.ndim == 1:
        g = math.isqrt(a.size)
        if g * g == a.size and g > 0:
            return a.reshape(g, g)
    raise ValueError(f"an attention map must be (g, g) or (g*g,), got shape {a.shape}")


def as_grids(alphas: Any) -> np.ndarray:
    """A sequence of attention maps, (T, g, g) or (T, g*g), as a (T, g, g) array."""
    a = to_numpy(alphas)
    if a.ndim == 3 and a.shape[1] == a.shape[2]:
        return a
    if a.ndim == 2:
        g = math.isqrt(a.shape[1])
        if g * g == a.shape[1] and g > 0:
            return a.reshape(a.shape[0], g, g)
    raise ValueError(f"attention maps must be (T, g, g) or (T, g*g), got shape {a.shape}")


# --------------------------------------------------------------------------- upsampling
def axis_weights(u: np.ndarray, g: int, mode: str, sigma: float) -> np.ndarray:
    """Weights (len(u), g) of the g cells at positions ``u`` given in cell units.

    Cell c has its centre at u = c; the grid spans u in [-0.5, g - 0.5]. Each row sums to 1, so a
    uniform map stays uniform everywhere, borders included.
    """
    cells = np.arange(g, dtype=np.float64)
    if mode == "nearest":
        idx = np.clip(np.floor(u + 0.5), 0, g - 1).astype(int)
        w = np.zeros((u.size, g))
        w[np.arange(u.size), idx] = 1.0
        return w
    if mode == "bilinear":
        # Tent functions at the cell centres; positions beyond the outer centres are clamped
        # (edge replication), as in torch's interpolate(..., align_corners=False).
        uc = np.clip(u, 0.0, g - 1.0)
        return np.maximum(0.0, 1.0 - np.abs(uc[:, None] - cells[None, :]))
    if mode == "gaussian":
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        # A Gaussian of std `sigma` cells at every cell centre, normalised per position
        # (Nadaraya-Watson): the smooth look of the paper's figures without the border fade.
        logits = -0.5 * ((u[:, None] - cells[None, :]) / sigma) ** 2
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        return w / w.sum(axis=1, keepdims=True)
    raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {mode!r}")


def separable(wy: np.ndarray, a: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """``wy @ a @ wx.T`` (contiguous operands: OpenBLAS is far slower on the transposed view)."""
    return (wy @ a) @ np.ascontiguousarray(wx.T)


def cell_coords(n: int, g: int) -> np.ndarray:
    """Centres of n output pixels spread over g cells, in cell units (align_corners=False)."""
    return (np.arange(n, dtype=np.float64) + 0.5) * (g / n) - 0.5


def upsample_attention(alpha_grid: Any, out_w: int, out_h: int, mode: str = "bilinear",
                       sigma: float = DEFAULT_SIGMA, geometry: Optional["GridGeometry"] = None) -> np.ndarray:
    """Upsample one attention map from its own grid (g x g) to (out_h, out_w).

    Args:
        alpha_grid: (g, g) or (g*g,) attention weights; g is read from the array (7, 14, ...).
        out_w, out_h: target size in pixels (any aspect ratio).
        mode: ``bilinear`` (align_corners=False, edges replicated), ``gaussian`` (a Gaussian of
            std ``sigma`` cells per cell centre, normalised per pixel) or ``nearest`` (blocks).
        sigma: gaussian mode only, in grid cells (independent of g and of the output size).
        geometry: where the encoder's cells lie (:func:`grid_geometry`); None: cells tiling the input.

    Returns:
        (out_h, out_w) float array. The value at the centre of cell (i, j) equals alpha[i, j] for
        bilinear and nearest; the sum is about alpha.sum() * out_w * out_h / g**2.
    """
    a = as_grid(alpha_grid)
    wy, wx = upsample_weights(a.shape[0], out_w, out_h, mode, sigma, geometry)
    return separable(wy, a, wx)


def upsample_weights(g: int, out_w: int, out_h: int, mode: str = "bilinear", sigma: float = DEFAULT_SIGMA,
                     geometry: Optional["GridGeometry"] = None) -> tuple[np.ndarray, np.ndarray]:
    """The separable weights of :func:`upsample_attention`: (wy (out_h, g), wx (out_w, g)), so that the
    upsampled map of a (g, g) alpha is ``wy @ alpha @ wx.T``."""
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"output size must be positive, got {out_w}x{out_h}")
    if geometry is None or geometry.uniform:
        uy, ux = cell_coords(int(out_h), g), cell_coords(int(out_w), g)
    else:
        geometry.check(g)
        uy = geometry.cells((np.arange(int(out_h), dtype=np.float64) + 0.5) / int(out_h))
        ux = geometry.cells((np.arange(int(out_w), dtype=np.float64) + 0.5) / int(out_w))
    return axis_weights(uy, g, mode, sigma), axis_weights(ux, g, mode, sigma)


def pools_block5(grid_size: int, image_size: int, encoder: str = "vgg16") -> bool:
    """Whether the grid is a pool of a finer map (VGG16: block5_conv3, S/16 x S/16; another encoder:
    its tapped map), i.e. whether the pool mode matters."""
    if encoder == "vgg16":
        return grid_size < image_size // VGG16_STRIDE
    spec = encoder_spec(encoder)
    return grid_size < spec.map_size(resolve_tap(encoder, grid_size, image_size), image_size)


# --------------------------------------------------------------------------- where the cells lie
def adaptive_windows(n: int, g: int) -> list[tuple[int, int]]:
    """The [lo, hi) map cells each of the g grid cells pools (torch's adaptive pooling windows)."""
    return [((i * n) // g, -(-((i + 1) * n) // g)) for i in range(g)]


@dataclass(frozen=True)
class GridGeometry:
    """Where the g cells of a grid lie along one axis (the same for both), as fractions of the side of
    the encoder's input (0 = its left/top edge, 1 = its right/bottom edge)."""

    centres: tuple[float, ...]  # cell c looks at a window centred here
    uniform: bool  # the cells tile the input: centre c at (c + 0.5) / g (the layout assumed without a geometry)

    @property
    def g(self) -> int:
        return len(self.centres)

    def check(self, g: int) -> None:
        if g != self.g:
            raise ValueError(f"the attention maps are {g}x{g} but the encoder's grid is {self.g}x{self.g}")

    def cells(self, f: np.ndarray) -> np.ndarray:
        """Positions (fractions of the side) in cell units: centre c -> c, piecewise-linear between
        centres, extrapolated beyond the outer ones with the outer spacing."""
        f = np.asarray(f, dtype=np.float64)
        c = np.asarray(self.centres)
        if self.g == 1:
            return np.zeros_like(f)
        idx = np.arange(self.g, dtype=np.float64)
        u = np.interp(f, c, idx)
        lo, hi = f < c[0], f > c[-1]
        u[lo] = (f[lo] - c[0]) / (c[1] - c[0])
        u[hi] = self.g - 1 + (f[hi] - c[-1]) / (c[-1] - c[-2])
        return u

    def edges(self) -> np.ndarray:
        """(g + 1,) cell boundaries in [0, 1]: the midpoints between centres (each point belongs to the
        cell whose centre is nearest), 0 and 1 at the ends."""
        if self.uniform:
            return np.arange(self.g + 1, dtype=np.float64) / self.g
        c = np.asarray(self.centres)
        return np.concatenate([[0.0], (c[:-1] + c[1:]) / 2, [1.0]])


def uniform_geometry(g: int) -> GridGeometry:
    return GridGeometry(tuple((c + 0.5) / g for c in range(g)), True)


def grid_geometry(encoder: str, grid_size: int, image_size: int) -> GridGeometry:
    """The geometry of ``encoder``'s ``grid_size`` grid at ``image_size`` px: each map cell's receptive
    field centre (``first_centre + stride * j``, from ``model.specs``), a pooled cell's the mean of
    the centres it pools (``adaptive_windows``)."""
    spec = encoder_spec(encoder)
    tap = resolve_tap(encoder, grid_size, image_size)
    n = spec.map_size(tap, image_size)
    if n < grid_size:  # VGG16's old resampling of a coarser map: its cells, drawn as tiles
        return uniform_geometry(grid_size)
    centres = [tap.first_centre + tap.stride * (lo + hi - 1) / 2 for lo, hi in adaptive_windows(n, grid_size)]
    tiles = all(abs(c - (i + 0.5) * image_size / grid_size) < 1e-9 for i, c in enumerate(centres))
    return uniform_geometry(grid_size) if tiles else GridGeometry(tuple(c / image_size for c in centres), False)


def encoder_geometry(encoder_cfg) -> GridGeometry:
    """:func:`grid_geometry` of an ``EncoderConfig``."""
    return grid_geometry(encoder_cfg.name, encoder_cfg.grid_size, encoder_cfg.image_size)
