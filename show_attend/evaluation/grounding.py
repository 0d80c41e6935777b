"""Does the model look at the object it names? A grounding score on the synthetic shapes data.

The shapes dataset knows every object's box and colour/shape/size, so for each *generated* colour
or shape word we can find the object it names and check where the attention of that step went.

Matching a generated word to objects (``match_words``):

* A noun phrase is a run of consecutive object words (size, colour, shape words), closed by a
  shape word: "a large red circle to the left of a small blue square" has the phrases
  (large, red, circle) and (small, blue, square).
* The candidates of a word are the objects that fit *every* attribute of its phrase ("red" in
  "red circle" names the red circle, not a red square). If no object fits the whole phrase (the
  model got one attribute wrong), the candidates are the objects that fit the word alone.
* No candidate: the word names nothing in the image (a hallucination), counted in
  ``n_unmatched`` and left out of the rates.
* Several candidates (e.g. "red" with two red circles): the word is ambiguous (``n_ambiguous``).
  It counts as a hit if the peak is in any candidate box, and its mass is the max over the
  candidates; its uniform baselines are computed the same way (union of boxes for the hit, max
  area share for the mass), so the ratios stay fair.

Scores per grounded word, averaged (``grounding_score``):

* hit: the centre of the argmax cell of the g x g map, in image pixels ((c + 0.5) W / g,
  (r + 0.5) H / g), lies inside the box (x1, y1 exclusive).
* mass: the map upsampled to image resolution with the same bilinear upsampler as the figures
  (``model.geometry.upsample_attention``), normalised to sum 1, summed over the pixels whose centres
  lie inside the box. Computed at pixel resolution, a box that covers part of a cell gets part of
  that cell's mass.
* uniform_hit: the chance level of the hit, i.e. the fraction of the g*g cell centres that lie in
  the box (what a peak drawn uniformly over cells would score; on a fine grid this tends to the
  box's area share, but a small box on a 7x7 grid may hold no cell centre at all, and then no
  model can hit it either).
* uniform_mass: the box's area share (the mass a uniform map puts in it).
* near: the argmax cell overlaps the box (shares pixels with it), i.e. the peak is inside the box
  or in a cell on its border: a near miss counts. Its chance level is the fraction of cells that
  overlap the box (``uniform_near``).
* offset: where the peak cell's centre lies relative to the centre of the (nearest) named box, in
  cells, (dx to the right, dy down); averaged over the words, a systematic displacement of the
  peaks shows up here (``mean_peak_offset``).

The encoder sees the whole (square) image, so the grid spans the full image. Where its cells lie
comes from the encoder (``geometry``, ``model.geometry.encoder_geometry``): VGG's tile the image
(the formulas above); a ResNet's or Xception's sit on their receptive fields' centres, and then
"the centre of cell c" is that centre, a cell's extent reaches halfway to its neighbours' centres
(the image border at the ends), and offsets are measured in those cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..data.scenes import object_word_kind, size_of_word
from ..model.geometry import GridGeometry, as_grids, encoder_geometry, upsample_attention

SCORED_KINDS = ("color", "shape")


def _word_attribute(word: str) -> Optional[tuple[str, str]]:
    """(kind, value) for an object word: ("color", "red"), ("size", "large") for "big", ..."""
    kind = object_word_kind(word)
    if kind is None:
        return None
    return (kind, size_of_word(word) if kind == "size" else word)


def _fits(obj: Mapping[str, Any], attrs: Sequence[tuple[str, str]]) -> bool:
    return all(obj.get(kind) == value for kind, value in attrs)


def noun_phrases(tokens: Sequence[str]) -> list[list[int]]:
    """Token indices of the noun phrases: runs of object words, each closed by a shape word."""
    phrases: list[list[int]] = []
    current: list[int] = []
    for i, tok in enumerate(tokens):
        kind = object_word_kind(tok)
        if kind is None:
            if current:
                phrases.append(current)
            current = []
            continue
        current.append(i)
        if kind == "shape":
            phrases.append(current)
            current = []
    if current:
        phrases.append(current)
    return phrases


def match_words(tokens: Sequence[str], objects: Sequence[Mapping[str, Any]]
                ) -> list[Optional[list[int]]]:
    """Per token: None (not an object word), [] (names no object here), or candidate object indices."""
    out: list[Optional[list[int]]] = [None] * len(tokens)
    for phrase in noun_phrases(tokens):
        attrs = [_word_attribute(tokens[i]) for i in phrase]
        whole = [k for k, obj in enumerate(objects) if _fits(obj, attrs)]
        for i, attr in zip(phrase, attrs):
            out[i] = whole or [k for k, obj in enumerate(objects) if _fits(obj, [attr])]
    return out


@dataclass(frozen=True)
class WordScore:
    """The grounding of one generated word."""

    index: int  # position in the generated tokens (= attention step)
    word: str
    kind: str
    candidates: tuple[int, ...]
    hit: bool
    mass: float
    uniform_hit: float
    uniform_mass: float
    near: bool
    uniform_near: float
    offset: tuple[float, float]  # peak cell centre - box centre, in cells (right, down)


def _size_wh(image_size: Union[int, Sequence[int]]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    w, h = image_size
    return int(w), int(h)


def _pixel_range(a: float, b: float, n: int) -> slice:
    """Pixels whose centres i + 0.5 lie in [a, b), clipped to [0, n)."""
    lo = max(0, int(np.ceil(a - 0.5)))
    hi = min(n, int(np.ceil(b - 0.5)))
    return slice(lo, max(lo, hi))


def _in_box(x: np.ndarray, y: np.ndarray, box: Sequence[float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)


def _cells_overlapping(box: Sequence[float], g: int, w: int, h: int,
                       geometry: Optional[GridGeometry] = None) -> np.ndarray:
    """(g, g) bool: the cells (row, column) that share a positive area with the box."""
    x0, y0, x1, y1 = box
    if geometry is None or geometry.uniform:
        edges_x, edges_y = np.arange(g + 1) * w / g, np.arange(g + 1) * h / g
    else:
        edges_x, edges_y = geometry.edges() * w, geometry.edges() * h
    cols = (edges_x[:-1] < x1) & (edges_x[1:] > x0)
    rows = (edges_y[:-1] < y1) & (edges_y[1:] > y0)
    return rows[:, None] & cols[None, :]


def _gap_in_cells(px: float, py: float, box: Sequence[float], cw: float, ch: float) -> float:
    """Euclidean distance from a point to a box, in cells (0 inside)."""
    x0, y0, x1, y1 = box
    dx, dy = max(x0 - px, 0.0, px - x1) / cw, max(y0 - py, 0.0, py - y1) / ch
    return float(np.hypot(dx, dy))


def score_sample(tokens: Sequence[str], alphas: Any, objects: Sequence[Mapping[str, Any]],
                 grid_size: int, image_size: Union[int, Sequence[int]],
                 kinds: Sequence[str] = SCORED_KINDS, geometry: Optional[GridGeometry] = None
                 ) -> tuple[list[WordScore], list[int]]:
    """Score one caption. Returns (scores of the grounded words, indices of unmatched words).

    ``alphas``: (T, g*g) or (T, g, g), T >= len(tokens) (an extra ``<end>`` step is ignored).
    ``geometry``: where the encoder's cells lie; None: they tile the image (VGG).
    """
    grids = as_grids(alphas)
    g = int(grid_size)
    if grids.shape[1] != g:
        raise ValueError(f"grid_size={g} but the attention maps are {grids.shape[1]}x{grids.shape[2]}")
    if grids.shape[0] < len(tokens):
        raise ValueError(f"{len(tokens)} tokens but only {grids.shape[0]} attention steps")
    w, h = _size_wh(image_size)
    tiles = geometry is None or geometry.uniform
    if tiles:
        centres = (np.arange(g) + 0.5)
        cols, rows = centres * w / g, centres * h / g
    else:
        geometry.check(g)
        cols, rows = np.asarray(geometry.centres) * w, np.asarray(geometry.centres) * h
    cx, cy = np.meshgrid(cols, rows)  # (g, g): x per column, y per row
    boxes = [tuple(float(v) for v in obj["box"]) for obj in objects]
    cells_in = [_in_box(cx, cy, b) for b in boxes]
    cells_touch = [_cells_overlapping(b, g, w, h, geometry) for b in boxes]
    cw, ch = w / g, h / g
    area_share = [(_pixel_range(b[0], b[2], w).stop - _pixel_range(b[0], b[2], w).start)
                  * (_pixel_range(b[1], b[3], h).stop - _pixel_range(b[1], b[3], h).start) / (w * h)
                  for b in boxes]

    scores: list[WordScore] = []
    unmatched: list[int] = []
    for t, cands in enumerate(match_words(tokens, objects)):
        if cands is None:
            continue
        kind = object_word_kind(tokens[t])
        if kind not in kinds:
            continue
        if not cands:
            unmatched.append(t)
            continue
        a = grids[t]
        r, c = np.unravel_index(int(np.argmax(a)), a.shape)
        px, py = ((c + 0.5) * w / g, (r + 0.5) * h / g) if tiles else (cols[c], rows[r])
        hit = any(_in_box(np.float64(px), np.float64(py), boxes[k]) for k in cands)
        up = upsample_attention(a, w, h, mode="bilinear", geometry=geometry)
        total = float(up.sum())
        masses = []
        for k in cands:
            b = boxes[k]
            inside = float(up[_pixel_range(b[1], b[3], h), _pixel_range(b[0], b[2], w)].sum())
            masses.append(inside / total if total > 0 else 0.0)
        union = np.zeros((g, g), dtype=bool)
        touch = np.zeros((g, g), dtype=bool)
        for k in cands:
            union |= cells_in[k]
            touch |= cells_touch[k]
        nearest = boxes[min(cands, key=lambda k: _gap_in_cells(px, py, boxes[k], cw, ch))]
        if tiles:
            offset = ((px - (nearest[0] + nearest[2]) / 2) / cw, (py - (nearest[1] + nearest[3]) / 2) / ch)
        else:  # in the encoder's cells: the peak cell's index minus the box centre's position in cells
            bx, by = geometry.cells(np.array([(nearest[0] + nearest[2]) / 2 / w, (nearest[1] + nearest[3]) / 2 / h]))
            offset = (c - float(bx), r - float(by))
        scores.append(WordScore(t, tokens[t], kind, tuple(cands), bool(hit), max(masses),
                                float(union.mean()), max(area_share[k] for k in cands),
                                bool(touch[r, c]), float(touch.mean()), (float(offset[0]), float(offset[1]))))
    return scores, unmatched


def _summary(scores: Sequence[WordScore], n_unmatched: int) -> dict[str, Any]:
    n = len(scores)
    if n == 0:
        return {"hit_rate": None, "mass_in_box": None, "uniform_hit_rate": None, "uniform_mass": None,
                "hit_rate_ratio": None, "mass_ratio": None, "near_rate": None, "uniform_near_rate": None,
                "mean_peak_offset": None, "n_words": 0, "n_unmatched": n_unmatched, "n_ambiguous": 0}
    hit = float(np.mean([s.hit for s in scores]))
    mass = float(np.mean([s.mass for s in scores]))
    u_hit = float(np.mean([s.uniform_hit for s in scores]))
    u_mass = float(np.mean([s.uniform_mass for s in scores]))
    return {"hit_rate": hit, "mass_in_box": mass, "uniform_hit_rate": u_hit, "uniform_mass": u_mass,
            "hit_rate_ratio": hit / u_hit if u_hit > 0 else None,
            "mass_ratio": mass / u_mass if u_mass > 0 else None,
            "near_rate": float(np.mean([s.near for s in scores])),
            "uniform_near_rate": float(np.mean([s.uniform_near for s in scores])),
            "mean_peak_offset": [float(np.mean([s.offset[i] for s in scores])) for i in (0, 1)],
            "n_words": n, "n_unmatched": n_unmatched,
            "n_ambiguous": sum(len(s.candidates) > 1 for s in scores)}


def _unpack(sample: Any) -> tuple[Sequence[str], Any, Sequence[Mapping[str, Any]]]:
    if isinstance(sample, Mapping):
        tokens = sample["tokens"] if "tokens" in sample else sample["words"]
        return tokens, sample["alphas"], sample["objects"]
    tokens, alphas, objects = sample
    return tokens, alphas, objects


def grounding_score(samples: Sequence[Any], grid_size: int, image_size: Union[int, Sequence[int]],
                    kinds: Sequence[str] = SCORED_KINDS, geometry: Optional[GridGeometry] = None) -> dict[str, Any]:
    """Grounding of the generated colour and shape words over a set of captions.

    Args:
        samples: each ``(tokens, alphas, objects)`` or a dict with those keys: the generated words,
            their attention (T, g*g) (alpha of step t = attention used to emit token t), and the
            image's objects ``[{"color", "shape", "size", "box": [x0, y0, x1, y1]}]``.
        grid_size: g (7 or 14).
        image_size: the (square) image side in pixels, or (width, height).
        kinds: which object words to score (``("color", "shape")``; add ``"size"`` if wanted).
        geometry: where the encoder's cells lie (``model.geometry.encoder_geometry``); None: they tile the image.

    Returns:
        ``hit_rate``, ``mass_in_box``, ``uniform_hit_rate``, ``uniform_mass``, ``hit_rate_ratio``
        (hit_rate / uniform_hit_rate), ``mass_ratio``, ``near_rate`` (peak cell overlaps the box) and
        its chance ``uniform_near_rate``, ``mean_peak_offset`` ([dx, dy] in cells), ``n_words`` (grounded words scored),
        ``n_unmatched`` (object words naming nothing in the image), ``n_ambiguous``,
        ``n_samples`` and ``per_kind`` ({kind: the same keys}). Rates are None when undefined.
        See the module docstring for the exact definitions.
    """
    all_scores: list[WordScore] = []
    unmatched_kinds: list[str] = []
    for sample in samples:
        tokens, alphas, objects = _unpack(sample)
        tokens = [str(t) for t in tokens]
        scores, unmatched = score_sample(tokens, alphas, objects, grid_size, image_size, kinds, geometry)
        all_scores += scores
        unmatched_kinds += [object_word_kind(tokens[i]) or "" for i in unmatched]
    out = _summary(all_scores, len(unmatched_kinds))
    out["n_samples"] = len(samples)
    out["per_kind"] = {k: _summary([s for s in all_scores if s.kind == k], unmatched_kinds.count(k))
                       for k in kinds}
    return out


def dataset_grounding(dataset, split: str, decoded: dict[str, Any], cfg) -> dict[str, Any]:
    """The grounding score of a split's decoded captions ({image_id: Decoded}) on datasets that know
    their objects' boxes (the synthetic shapes); {} for any other dataset."""
    images = {im.image_id: im for im in dataset.split(split)}
    if not any("objects" in im.extra for im in images.values()):
        return {}
    if any(d.alphas is None for d in decoded.values()):  # an attention-free model: nothing to ground
        return {}
    samples = [(d.words, d.alphas.numpy(), images[i].extra["objects"]) for i, d in decoded.items()]
    size = next(iter(images.values())).extra.get("width", cfg.data.synthetic.image_size)
    return grounding_score(samples, grid_size=cfg.encoder.grid_size, image_size=size,
                           geometry=encoder_geometry(cfg.encoder))
