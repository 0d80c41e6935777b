"""Does attention look at what the caption names, on real photos? Scored against Flickr30k Entities boxes.

With ``data.entities_dir`` set, ``evaluate`` scores two things for every image of the split that has
Entities annotations (``show_attend.data.entities``), on the model's own grid and input frame
(``show_attend.data.boxes``):

* **reference** captions, teacher-forced: each dataset caption is aligned to its Entities sentence
  and its tokens to the sentence's phrases; for every scorable (boxed) phrase the model is fed the
  human caption, and at the steps of the phrase's words its attention is scored against the union
  of the phrase's chain's boxes. One pass over all captions of a batch of images, during decoding.
* **generated** captions (greedy or beam, as decoded): a generated word that is the head noun (last
  word, case-insensitive) of a scorable phrase of the image's Entities captions names that phrase's
  chain; the generated phrase is the longest run ending at that word that matches the annotated
  phrase's last words, and it is scored at the steps that wrote it. Several chains with the same
  best match (two dogs) are ambiguous: the best of them counts, and so do their baselines.

Per phrase (Liu et al., AAAI 2017):

* ``correctness``: for each word of the phrase, the map upsampled to the S x S input (bilinear, as
  the heatmaps are drawn) and renormalised, the mass inside the boxes; the phrase takes the maximum
  over its words. Uniform attention scores the boxes' share of the frame (``uniform_correctness``).
* ``hit`` (pointing): the centre of the peak cell of the head word's map lies inside a box. A peak
  drawn uniformly over the cells scores the share of cell centres inside the boxes (``chance_hit_rate``).

The map scored is the one that formed the context: soft attention's alpha, hard attention's chosen
cell (one-hot), an ensemble's members' mean alpha. A model without attention has no map: skipped.
Summaries are means over phrases, overall and per phrase type (``entities.PHRASE_TYPES``; a phrase
with two types counts under both).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..data.boxes import FrameGrid, chain_boxes
from ..data.entities import PHRASE_TYPES, Entities, EntitiesError, EntitiesImage, align_captions, token_phrases
from ..data.images import ImageError, image_size
from ..data.transforms import ImageTransform
from ..model.geometry import encoder_geometry
from ..utils.runtime import eval_mode

MAX_ROWS = 512  # captions per teacher-forced batch


@dataclass(frozen=True)
class Region:
    """A chain's boxes on the model's grid (``FrameGrid``)."""

    inside: np.ndarray  # (L,) mass weights: alpha @ inside / alpha @ total = mass in the boxes
    centre_in: np.ndarray  # (L,) bool: cell centres inside a box
    area_share: float  # uniform attention's mass in the boxes
    centre_share: float  # chance that a uniformly drawn peak cell is inside

    @classmethod
    def of(cls, grid: FrameGrid, boxes) -> "Region":
        """The region of ``boxes`` (in the encoder's frame, ``data.boxes.to_frame``) on ``grid``."""
        centre_in = grid.centre_in(boxes)
        return cls(grid.mass_weights(boxes), centre_in, grid.area_share(boxes), float(centre_in.mean()))


@dataclass(frozen=True)
class Target:
    """A phrase of a reference caption to score: token positions, the head's position, its chain."""

    positions: tuple[int, ...]
    head: int
    chain: str
    types: tuple[str, ...]


@dataclass
class ImageTargets:
    entities: EntitiesImage
    regions: dict[str, Region]
    captions: list[tuple[list[int], list[Target]]]  # (token ids <start> w1 .. wn, targets) per aligned caption
    heads: dict[str, list[tuple[tuple[str, ...], str, tuple[str, ...]]]]  # head -> (phrase tokens, chain, types)


@dataclass(frozen=True)
class Score:
    types: tuple[str, ...]
    correctness: float
    hit: bool
    uniform: float
    chance_hit: float
    ambiguous: bool = False


@dataclass
class Counts:
    images: int = 0
    annotated: int = 0
    unreadable: int = 0  # annotated, but the image file's size could not be read
    captions: int = 0
    aligned: int = 0
    phrases: int = 0  # phrases of the aligned Entities sentences
    scorable: int = 0  # of those, boxed and not scene / notvisual
    cut_off: int = 0  # scorable, but the boxes lie outside what a centre crop kept
    unmatched_tokens: int = 0  # scorable phrases none of whose words the dataset caption's tokens reach


def summarize(scores: Sequence[Score]) -> dict[str, Any]:
    """Means over phrases, overall and per type: correctness and hit next to their baselines."""
    def block(group: Sequence[Score]) -> dict[str, Any]:
        n = len(group)
        if n == 0:
            return {"n": 0, "correctness": None, "uniform_correctness": None, "correctness_ratio": None,
                    "hit_rate": None, "chance_hit_rate": None, "hit_ratio": None}
        c, u = float(np.mean([s.correctness for s in group])), float(np.mean([s.uniform for s in group]))
        h, ch = float(np.mean([s.hit for s in group])), float(np.mean([s.chance_hit for s in group]))
        return {"n": n, "correctness": c, "uniform_correctness": u, "correctness_ratio": c / u if u > 0 else None,
                "hit_rate": h, "chance_hit_rate": ch, "hit_ratio": h / ch if ch > 0 else None,
                "n_ambiguous": sum(s.ambiguous for s in group)}

    out = block(scores)
    out["per_type"] = {t: block([s for s in scores if t in s.types]) for t in PHRASE_TYPES}
    return out


def phrase_score(alphas: np.ndarray, positions: Sequence[int], head: int, regions: Sequence[Region],
                 total: np.ndarray, types: tuple[str, ...] = ()) -> Score:
    """Score a phrase written (or read) at steps ``positions`` with its head at step ``head``.

    alphas (T, L): the maps of the steps; ``regions``: its chain's (several: ambiguous, the best
    counts); ``total``: ``FrameGrid.total``."""
    a = alphas[list(positions)]  # (k, L)
    norm = np.maximum(a @ total, 1e-30)  # (k,)
    peak = int(np.argmax(alphas[head]))
    return Score(types, max(float(np.max(a @ r.inside / norm)) for r in regions),
                 any(bool(r.centre_in[peak]) for r in regions), max(r.area_share for r in regions),
                 max(r.centre_share for r in regions), len(regions) > 1)


class EntitiesGrounding:
    """Collects both modes during an evaluation: ``teacher_force`` per decoded batch, then ``finish``."""

    def __init__(self, entities: Entities, dataset, split: str, cfg, decoder, vocab):
        self.entities, self.dataset, self.vocab, self.decoder = entities, dataset, vocab, decoder
        self.images = {im.image_id: im for im in dataset.split(split)}
        self.grid = FrameGrid.of(cfg.encoder.image_size, encoder_geometry(cfg.encoder))
        self.transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode, cfg.encoder.name)
        self.targets: dict[str, Optional[ImageTargets]] = {}
        self.reference: list[Score] = []
        self.counts = Counts()
        self.seconds = 0.0  # time spent here (reading, aligning, teacher forcing, scoring)

    @classmethod
    def create(cls, cfg, dataset, split: str, decoder, vocab) -> tuple[Optional["EntitiesGrounding"], str]:
        """A grounder, or None and why not ('' when ``data.entities_dir`` is not set)."""
        root = cfg.data.entities_dir
        if not root:
            return None, ""
        if not getattr(decoder, "attends", True):
            return None, "Flickr30k Entities grounding skipped: the model has no attention (model.attention: none)"
        try:
            entities = Entities(root)
        except EntitiesError as exc:
            return None, f"Flickr30k Entities grounding skipped (data.entities_dir): {exc}"
        if not any(entities.get(im.file_name) for im in dataset.split(split)):
            return None, (f"Flickr30k Entities grounding skipped: no image of the {split} split has annotations in "
                          f"{entities.root} (looked up by Flickr id, e.g. {dataset.split(split)[0].file_name})")
        return cls(entities, dataset, split, cfg, decoder, vocab), ""

    # ------------------------------------------------------------------ per image
    def _targets(self, image_id: str) -> Optional[ImageTargets]:
        if image_id in self.targets:
            return self.targets[image_id]
        self.targets[image_id] = t = self._build(image_id)
        return t

    def _build(self, image_id: str) -> Optional[ImageTargets]:
        c = self.counts
        c.images += 1
        record = self.images[image_id]
        ent = self.entities.get(record.file_name)
        if ent is None:
            return None
        try:
            size = image_size(Path(self.dataset.image_dir) / record.file_name)
        except ImageError:
            c.unreadable += 1
            return None
        c.annotated += 1
        framed = chain_boxes(ent, size, self.transform)
        regions = {chain: Region.of(self.grid, b) for chain, b in framed.items()}
        alignment = align_captions(record.tokens, ent.sentences)
        c.captions += alignment.n_captions
        c.aligned += alignment.n_aligned
        captions = []
        for tokens, j in zip(record.tokens, alignment.sentence_of):
            if j is None:
                continue
            sentence = ent.sentences[j]
            per_token = token_phrases(tokens, sentence)
            targets = []
            for p in sentence.phrases:
                c.phrases += 1
                if ent.region(p) is None:
                    continue
                c.scorable += 1
                if p.chain not in regions:
                    c.cut_off += 1
                    continue
                positions = tuple(i for i, q in enumerate(per_token) if q is p)
                if not positions:
                    c.unmatched_tokens += 1
                    continue
                targets.append(Target(positions, positions[-1], p.chain, p.report_types))
            if targets:
                captions.append((self.vocab.encode(tokens), targets))
        return ImageTargets(ent, regions, captions, phrase_heads(ent, list(regions)))

    # ------------------------------------------------------------------ reference captions
    @torch.no_grad()
    def teacher_force(self, annotations: torch.Tensor, image_ids: Sequence[str]) -> None:
        """Feed every aligned reference caption of a batch's images; score its boxed phrases.
        annotations (B, L, D) as decoded."""
        t0 = time.perf_counter()
        rows = []  # (steps it needs, row of annotations, token ids, targets) per aligned caption
        for b, image_id in enumerate(image_ids):
            t = self._targets(image_id)
            rows += [(max(tg.positions[-1] for tg in targets) + 1, b, ids, targets)
                     for ids, targets in (t.captions if t is not None else [])]
        # longest first: step t then runs only the rows that still have a phrase at or after t
        rows.sort(key=lambda row: -row[0])
        for start in range(0, len(rows), MAX_ROWS):
            chunk = rows[start:start + MAX_ROWS]
            needs = [need for need, _, _, _ in chunk]  # steps per row, falling
            inputs = torch.full((len(chunk), needs[0]), self.vocab.pad_id, dtype=torch.long)  # (R, T)
            for r, (_, _, ids, _) in enumerate(chunk):
                n = min(needs[0], len(ids))
                inputs[r, :n] = torch.tensor(ids[:n])
            index = torch.tensor([b for _, b, _, _ in chunk], device=annotations.device)
            alphas = self._alphas(annotations.index_select(0, index), inputs.to(annotations.device),
                                  needs)  # (R, T, L)
            for r, (_, b, _, targets) in enumerate(chunk):
                regions = self.targets[image_ids[b]].regions
                for tg in targets:
                    self.reference.append(phrase_score(alphas[r], tg.positions, tg.head, [regions[tg.chain]],
                                                        self.grid.total, tg.types))
        self.seconds += time.perf_counter() - t0

    def _alphas(self, annotations: torch.Tensor, inputs: torch.Tensor, needs: Sequence[int]) -> np.ndarray:
        """Teacher forcing through ``advance`` (a decoder or an ensemble; ``step`` without the output layer,
        whose word distribution nothing here reads): the map of each step, (R, T, L). ``needs`` (R,), not
        increasing: row r is scored up to step needs[r] - 1, so step t runs only the rows with needs[r] > t
        (after it, a row's maps are zeros and never read)."""
        rows, steps = inputs.shape
        maps = annotations.new_zeros(rows, steps, annotations.shape[1], dtype=torch.float32)  # (R, T, L)
        needed = torch.tensor(needs)
        with eval_mode(self.decoder), torch.no_grad():
            state = self.decoder.init_state(annotations)  # annotations (R, L, D)
            for t in range(steps):
                active = int((needed > t).sum())  # the first `active` rows (longest first)
                state = state.narrow(active)  # views of the first `active` rows
                state, alpha = self.decoder.advance(inputs[:active, t], state)  # alpha (active, L): what formed z_t
                maps[:active, t] = alpha.float()
        return maps.cpu().double().numpy()  # (R, T, L)

    # ------------------------------------------------------------------ generated captions
    def generated(self, decoded: dict[str, Any]) -> tuple[list[Score], dict[str, int]]:
        """Score the generated words that name an annotated, boxed phrase of their image."""
        targets = {i: self._targets(i) for i in decoded}
        vocabulary = {h for t in targets.values() if t is not None for h in t.heads}
        counts = {"words": 0, "object_words": 0, "scored": 0}
        scores: list[Score] = []
        for image_id, d in decoded.items():
            t = targets[image_id]
            if t is None or d.alphas is None:
                continue
            words = [w.lower() for w in d.words]
            alphas = d.alphas.double().numpy()  # (T, L)
            counts["words"] += len(words)
            counts["object_words"] += sum(w in vocabulary for w in words)
            for m in match_generated(words, t.heads):
                scores.append(phrase_score(alphas, m.positions, m.head, [t.regions[ch] for ch in m.chains],
                                           self.grid.total, m.types))
                counts["scored"] += 1
        return scores, counts

    def finish(self, decoded: dict[str, Any], attention: str, decoding: str) -> dict[str, Any]:
        """The ``entities_grounding`` block of metrics.json."""
        t0 = time.perf_counter()
        generated, gen_counts = self.generated(decoded)
        self.seconds += time.perf_counter() - t0
        c = self.counts
        return {
            "entities_dir": str(self.entities.root), "attention": attention, "decoding": decoding,
            "grid_size": self.grid.g, "image_size": self.grid.size,
            "images": c.images, "annotated_images": c.annotated, "unreadable_images": c.unreadable,
            "captions": c.captions, "aligned_captions": c.aligned,
            "phrases": {"in_aligned_captions": c.phrases, "scorable": c.scorable, "cut_off_by_crop": c.cut_off,
                        "not_reached_by_tokens": c.unmatched_tokens, "scored": len(self.reference)},
            "reference": summarize(self.reference),
            "generated": {**summarize(generated), "generated_words": gen_counts["words"],
                          "object_words": gen_counts["object_words"], "scored_words": gen_counts["scored"]},
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class GeneratedPhrase:
    """A run of generated words that names annotated chains (several: ambiguous)."""

    positions: tuple[int, ...]  # the steps that wrote it
    head: int
    chains: tuple[str, ...]
    types: tuple[str, ...]


def phrase_heads(image: EntitiesImage, boxed: Sequence[str]) -> dict[str, list]:
    """head token -> [(phrase tokens, chain, types)] for the image's scorable phrases whose chains are in ``boxed``."""
    heads: dict[str, list] = {}
    for sentence in image.sentences:
        for p in sentence.phrases:
            if image.region(p) is None or p.chain not in boxed:
                continue
            toks = tuple(t for t, k in zip(sentence.tokens, sentence.token_word) if k in p.word_indices)
            if toks:
                heads.setdefault(toks[-1], []).append((toks, p.chain, p.report_types))
    return heads


def match_generated(words: Sequence[str], heads: dict[str, list]) -> list[GeneratedPhrase]:
    """The generated phrases that name annotated chains: each word that is a head (``phrase_heads``),
    with the longest run of words before it that matches an annotated phrase's last words."""
    words = [w.lower() for w in words]
    out = []
    for pos, w in enumerate(words):
        cands = heads.get(w)
        if not cands:
            continue
        matched = [(_suffix_match(words[:pos + 1], toks), chain, types) for toks, chain, types in cands]
        best = max(k for k, _, _ in matched)
        chains = tuple(sorted({chain for k, chain, _ in matched if k == best}))
        types = tuple(tp for tp in PHRASE_TYPES if any(tp in ty for k, _, ty in matched if k == best))
        out.append(GeneratedPhrase(tuple(range(pos - best + 1, pos + 1)), pos, chains, types))
    return out


def _suffix_match(generated: Sequence[str], phrase: Sequence[str]) -> int:
    """How many last words of ``generated`` equal the last words of ``phrase`` (>= 1: the head matched)."""
    k = 0
    while k < min(len(generated), len(phrase)) and generated[-1 - k] == phrase[-1 - k]:
        k += 1
    return k


def attention_label(decoder, cfg) -> str:
    """What the scored maps are, for the report."""
    members = getattr(decoder, "members", None)
    if members is not None:
        return f"ensemble of {len(members)}: the members' mean map"
    if cfg.model.attention == "hard":
        return ("hard: the chosen cell (one-hot)" if cfg.model.hard_decode == "argmax"
                else "hard, expectation decoding: alpha")
    return "soft: alpha"


@dataclass(frozen=True)
class WordBox:
    """A generated word's human boxes (in the image file's pixels) and its attention there."""

    boxes: tuple[tuple[float, float, float, float], ...]
    mass: float  # the word's renormalised upsampled mass inside the boxes (the best chain if ambiguous)
    hit: bool  # its peak cell's centre lies in a box
    uniform: float  # the boxes' share of the input
    chains: tuple[str, ...]


def word_boxes(words: Sequence[str], alphas: Any, image: EntitiesImage, file_size: tuple[int, int],
               transform: ImageTransform, grid: FrameGrid) -> list[Optional[WordBox]]:
    """Per generated word, the boxes of the annotated chain it helps name (``match_generated``) and its
    attention in them, or None. ``alphas`` (T, L) as decoded; ``file_size`` the image file's (w, h)."""
    framed = chain_boxes(image, file_size, transform)
    regions = {chain: Region.of(grid, b) for chain, b in framed.items()}
    a = np.asarray(alphas.double().numpy() if hasattr(alphas, "double") else alphas, dtype=np.float64)
    sx, sy = file_size[0] / image.width, file_size[1] / image.height
    out: list[Optional[WordBox]] = [None] * len(words)
    for m in match_generated(words, phrase_heads(image, list(regions))):
        boxes = tuple((x0 * sx, y0 * sy, x1 * sx, y1 * sy) for ch in m.chains for x0, y0, x1, y1 in image.boxes[ch])
        for t in m.positions:
            s = phrase_score(a, (t,), t, [regions[ch] for ch in m.chains], grid.total)
            out[t] = WordBox(boxes, s.correctness, s.hit, s.uniform, m.chains)
    return out
