"""Human boxes in the frame the encoder saw, and on its attention grid.

A box is given in the pixels of the photo it was drawn on (Flickr30k Entities: the original photo,
``EntitiesImage.width`` x ``height``). The file the package reads may be a resized copy (Flickr8k's
224x224 copies), so a box is first scaled by file size / annotated size; then it goes through the
encoder's input transform (``ImageTransform.crop_box``: squash, or a centre crop) into the S x S
input, S = ``encoder.image_size``: its *frame*, in frame pixels [0, S). Parts outside a crop are cut
off; a box left empty is dropped.

On the frame, with the grid geometry the heatmaps use (``model.geometry.GridGeometry``):

* ``pixel_mask``: (S, S) bool, the pixels whose centres lie in any of the boxes (their union).
* ``cell_mask``: (L,) = (g*g,) in [0, 1], the union's coverage averaged over each cell's pixels (a
  cell spans halfway to its neighbours' centres, ``GridGeometry.edges``); row-major like alpha.
* ``mass_weights``: (L,) weights so that, for any alpha, ``alpha @ inside / alpha @ total`` is the mass
  of the map upsampled to S x S (bilinear, as drawn) and renormalised that lies inside the boxes
  (Liu et al.'s attention correctness), without upsampling each map.
* ``centre_in``: (L,) bool, the cells whose centres lie in a box (the pointing hit of a peak cell).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..model.geometry import GridGeometry, uniform_geometry, upsample_weights
from .transforms import ImageTransform

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), half-open


def to_frame(boxes: Sequence[Box], annotated_size: tuple[int, int], file_size: tuple[int, int],
             transform: ImageTransform) -> tuple[Box, ...]:
    """Boxes drawn on a ``annotated_size`` (w, h) photo -> the encoder's S x S frame, for an image file
    of ``file_size`` (w, h) read through ``transform``. Clipped to the frame; empty boxes dropped."""
    aw, ah = annotated_size
    fw, fh = file_size
    sx, sy = fw / float(aw), fh / float(ah)
    cx0, cy0, cx1, cy1 = transform.crop_box(fw, fh)
    s = float(transform.image_size)
    kx, ky = s / (cx1 - cx0), s / (cy1 - cy0)
    out = []
    for x0, y0, x1, y1 in boxes:
        fx0, fx1 = (x0 * sx - cx0) * kx, (x1 * sx - cx0) * kx
        fy0, fy1 = (y0 * sy - cy0) * ky, (y1 * sy - cy0) * ky
        fx0, fy0 = max(0.0, fx0), max(0.0, fy0)
        fx1, fy1 = min(s, fx1), min(s, fy1)
        fx0, fy0, fx1, fy1 = (round(v, 6) for v in (fx0, fy0, fx1, fy1))  # no float noise at cell borders
        if fx1 > fx0 and fy1 > fy0:
            out.append((fx0, fy0, fx1, fy1))
    return tuple(out)


def _pixel_range(a: float, b: float, n: int) -> slice:
    """Pixels whose centres i + 0.5 lie in [a, b), clipped to [0, n)."""
    lo = max(0, int(np.ceil(a - 0.5)))
    hi = min(n, int(np.ceil(b - 0.5)))
    return slice(lo, max(lo, hi))


def pixel_mask(boxes: Sequence[Box], size: int) -> np.ndarray:
    """(S, S) bool: frame pixels whose centres lie in any box."""
    m = np.zeros((size, size), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        m[_pixel_range(y0, y1, size), _pixel_range(x0, x1, size)] = True
    return m


@dataclass(frozen=True)
class FrameGrid:
    """The encoder's S x S frame and its g x g grid: what every region on it is measured with.

    Build it once per model (``FrameGrid.of(size, geometry)``) and use it for every region.
    """

    size: int  # S
    geometry: GridGeometry
    wy: np.ndarray  # (S, g) bilinear upsampling weights per frame row
    wx: np.ndarray  # (S, g) per frame column
    total: np.ndarray  # (L,) mass of each cell over the whole upsampled frame
    starts: np.ndarray  # (g,) first frame pixel of each cell (both axes)
    counts: np.ndarray  # (g,) pixels per cell
    centres: np.ndarray  # (g,) cell centres in frame pixels

    @classmethod
    def of(cls, size: int, geometry: Optional[GridGeometry] = None, grid_size: Optional[int] = None) -> "FrameGrid":
        """The frame of an S-pixel input with ``geometry`` (or uniform cells of a ``grid_size`` grid)."""
        if geometry is None:
            if grid_size is None:
                raise ValueError("FrameGrid.of needs a geometry or a grid_size")
            geometry = uniform_geometry(int(grid_size))
        s, g = int(size), geometry.g
        if s < g:
            raise ValueError(f"a {s} px frame is smaller than its {g}x{g} grid")
        wy, wx = upsample_weights(g, s, s, "bilinear", geometry=geometry)
        total = np.outer(wy.sum(0), wx.sum(0)).reshape(-1)  # (L,)
        edges = geometry.edges() * s
        starts = np.array([_pixel_range(edges[c], edges[c + 1], s).start for c in range(g)])
        stops = np.array([_pixel_range(edges[c], edges[c + 1], s).stop for c in range(g)])
        if np.any(stops <= starts):
            raise ValueError(f"a cell of the {g}x{g} grid holds no pixel of the {s} px frame")
        centres = np.asarray(geometry.centres) * s
        return cls(s, geometry, wy, wx, total, starts, stops - starts, centres)

    @property
    def g(self) -> int:
        return self.geometry.g

    def pixel_mask(self, boxes: Sequence[Box]) -> np.ndarray:
        """(S, S) bool: the union of the (frame) boxes."""
        return pixel_mask(boxes, self.size)

    def cell_mask(self, boxes: Sequence[Box]) -> np.ndarray:
        """(L,) in [0, 1]: the share of each cell's pixels inside the union of the boxes."""
        m = self.pixel_mask(boxes).astype(np.float64)  # (S, S)
        sums = np.add.reduceat(np.add.reduceat(m, self.starts, axis=0), self.starts, axis=1)  # (g, g)
        return (sums / np.outer(self.counts, self.counts)).reshape(-1)

    def mass_weights(self, boxes: Sequence[Box]) -> np.ndarray:
        """(L,) ``inside``: ``alpha @ inside / alpha @ self.total`` is the renormalised upsampled mass in the boxes."""
        m = self.pixel_mask(boxes).astype(np.float64)  # (S, S)
        return (self.wy.T @ m @ self.wx).reshape(-1)  # (g, g) -> (L,)

    def centre_in(self, boxes: Sequence[Box]) -> np.ndarray:
        """(L,) bool: the cells whose centres lie inside a box (x0 <= x < x1, y0 <= y < y1)."""
        cx, cy = np.meshgrid(self.centres, self.centres)  # (g, g): x per column, y per row
        inside = np.zeros_like(cx, dtype=bool)
        for x0, y0, x1, y1 in boxes:
            inside |= (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
        return inside.reshape(-1)

    def area_share(self, boxes: Sequence[Box]) -> float:
        """The union's share of the frame: the mass uniform attention puts in it."""
        return float(self.pixel_mask(boxes).mean())


def chain_boxes(image, file_size: tuple[int, int], transform: ImageTransform) -> dict[str, tuple[Box, ...]]:
    """Every boxed chain of an ``EntitiesImage`` in the encoder's frame (chains cut off by a crop
    left out): {chain id: frame boxes}. ``file_size``: the image file's (w, h) (``data.images.image_size``)."""
    out = {}
    for chain, boxes in image.boxes.items():
        framed = to_frame(boxes, (image.width, image.height), file_size, transform)
        if framed:
            out[chain] = framed
    return out
