"""Attention-supervision targets: for each word of a boxed phrase of a caption, where its boxes lie
on the attention grid (``train.attention_supervision``).

For one split and one grid (encoder, grid size, input size, resize mode):

    masks  (M, L) float32   one row per (image, coreference chain with boxes): the union of the chain's
                            boxes averaged onto each grid cell (``data.entities``), normalised to sum 1
    links  (K, 4) int64     (image row, caption index, token position, mask row) for every token of a
                            boxed phrase of a dataset caption (scene, no-box and notvisual phrases: none)

built once and cached as ``<cache_dir>/supervision/<grid key>/<split>.npz`` with a ``.json`` index (the
image ids, the Entities files' and images' stamps, a hash of the captions, how many captions aligned).
The cache lies beside the feature cache, not inside its folder, and its key holds only what moves the
masks (``vgg16_g7_s224_squash``): a read-only feature cache can be shared, and another grid or
transform gets other masks. Token positions index ``PreparedImage.tokens[caption]``; the word at
position k is the one decoding step k predicts (its attention is alpha_k).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.files import atomic_write, atomic_write_json, remove_stale_temporaries
from .features import images_stamps

LOG = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump when the masks or links are computed differently: caches are rebuilt


@dataclass
class BoxTargets:
    """One split's targets (module docstring); ``summary``: counts for the log."""

    image_ids: list[str]
    masks: np.ndarray  # (M, L) float32, rows sum to 1
    links: np.ndarray  # (K, 4) int64: image row, caption index, token position, mask row
    summary: dict[str, Any] = field(default_factory=dict)
    _by_caption: Optional[dict[tuple[str, int], list[tuple[int, int]]]] = field(default=None, repr=False)

    @property
    def cells(self) -> int:
        return int(self.masks.shape[1])

    def words(self, image_id: str, caption: int) -> list[tuple[int, int]]:
        """[(token position, mask row)] of one caption's supervised words."""
        if self._by_caption is None:
            by: dict[tuple[str, int], list[tuple[int, int]]] = {}
            for image_row, cap, pos, row in self.links.tolist():
                by.setdefault((self.image_ids[image_row], cap), []).append((pos, row))
            self._by_caption = by
        return self._by_caption.get((image_id, caption), [])

    def steps(self, image_id: str, caption: int, num_words: int) -> torch.Tensor:
        """(num_words + 1, L): row k the target m of word k (predicted at step k), zeros for the other
        words and for ``<end>``; words from ``num_words`` on (clipped by ``data.max_caption_length``) are left out."""
        out = torch.zeros(num_words + 1, self.cells)
        for pos, row in self.words(image_id, caption):
            if pos < num_words:
                out[pos] = torch.from_numpy(self.masks[row])
        return out


def grid_key(encoder_cfg) -> str:
    """What the masks depend on: the encoder's cell geometry at this grid and input, and the transform."""
    return (f"{encoder_cfg.name}_g{encoder_cfg.grid_size}_s{encoder_cfg.image_size}"
            f"_{encoder_cfg.resize_mode}")


def targets_path(cache_dir: str | Path, encoder_cfg, split: str) -> Path:
    return Path(cache_dir) / "supervision" / grid_key(encoder_cfg) / f"{split}.npz"


def _stamps(dataset, split: str, entities_dir: str | Path) -> dict[str, str]:
    """What the cache must match: the Entities files, the split's images (names, sizes, times) and captions."""
    entities = hashlib.sha256()
    for sub in ("Sentences", "Annotations"):  # names, sizes and times (os.scandir: 31k files of Flickr30k in ms)
        folder = Path(entities_dir) / sub
        listing = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)) \
            if folder.is_dir() else []
        entities.update(json.dumps([sub, listing]).encode())
    images = dataset.split(split)
    captions = hashlib.sha256(json.dumps([[im.image_id, im.tokens] for im in images]).encode()).hexdigest()[:16]
    return {"format": str(FORMAT_VERSION), "entities": entities.hexdigest()[:16],
            "images": images_stamps([dataset.image_dir / im.file_name for im in images]), "captions": captions}


def build_box_targets(dataset, split: str, encoder_cfg, entities_dir: str | Path, progress: bool = True
                      ) -> BoxTargets:
    """Read the Entities files of the split's images and make the targets (no cache): each caption is
    aligned to its Entities sentence by text, each token to its phrase; a scorable phrase's chain
    (``EntitiesImage.region``) becomes one mask row per image, its boxes mapped into the encoder's frame."""
    from ..model.geometry import encoder_geometry
    from .boxes import FrameGrid, chain_boxes
    from .entities import Entities, aligned_sentences, token_phrases
    from .images import image_size
    from .transforms import ImageTransform

    entities = Entities(entities_dir)
    grid = FrameGrid.of(encoder_cfg.image_size, encoder_geometry(encoder_cfg))
    transform = ImageTransform(encoder_cfg.image_size, encoder_cfg.resize_mode, encoder_cfg.name)
    images = dataset.split(split)
    masks: list[np.ndarray] = []
    links: list[tuple[int, int, int, int]] = []
    annotated = aligned = captions = 0
    for image_row, im in enumerate(tqdm(images, desc=f"{split} box targets", unit="img", disable=not progress)):
        captions += len(im.tokens)
        annotation = entities.get(im.file_name)
        if annotation is None:
            continue
        annotated += 1
        sentences = aligned_sentences(im.tokens, annotation)
        aligned += sum(s is not None for s in sentences)
        framed = chain_boxes(annotation, image_size(dataset.image_dir / im.file_name), transform)
        rows: dict[str, int] = {}  # chain -> mask row (-1: nothing of it left on the grid)
        for caption, (tokens, sentence) in enumerate(zip(im.tokens, sentences)):
            if sentence is None:
                continue
            for pos, phrase in enumerate(token_phrases(tokens, sentence)):
                if phrase is None or annotation.region(phrase) is None or phrase.chain not in framed:
                    continue
                if phrase.chain not in rows:
                    cover = grid.cell_mask(framed[phrase.chain])  # (L,) in [0, 1]
                    rows[phrase.chain] = len(masks) if cover.sum() > 0 else -1
                    if cover.sum() > 0:
                        masks.append((cover / cover.sum()).astype(np.float32))
                if rows[phrase.chain] >= 0:
                    links.append((image_row, caption, pos, rows[phrase.chain]))
    summary = {"images": len(images), "with Entities files": annotated, "captions": captions,
               "aligned captions": aligned, "supervised words": len(links), "regions": len(masks)}
    LOG.info("%s split box targets: %s", split, ", ".join(f"{k} {v}" for k, v in summary.items()))
    return BoxTargets([im.image_id for im in images], np.asarray(masks, np.float32).reshape(-1, grid.g * grid.g),
                      np.asarray(links, np.int64).reshape(-1, 4), summary)


def save_box_targets(path: Path, targets: BoxTargets, index: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, masks=targets.masks.astype(np.float32), links=targets.links.astype(np.int64))

    atomic_write(path, write)
    atomic_write_json(path.with_suffix(".json"), dict(index, image_ids=targets.image_ids, summary=targets.summary),
                      indent=None)


def load_box_targets(path: Path) -> BoxTargets:
    index = json.loads(path.with_suffix(".json").read_text())
    with np.load(path) as data:
        return BoxTargets(index["image_ids"], data["masks"], data["links"], index.get("summary", {}))


def ensure_box_targets(dataset, split: str, encoder_cfg, entities_dir: str | Path, progress: bool = True
                       ) -> BoxTargets:
    """The split's targets from the cache, or built (and cached) when missing or stale."""
    path = targets_path(dataset.root, encoder_cfg, split)
    stamps = _stamps(dataset, split, entities_dir)
    if path.is_file() and path.with_suffix(".json").is_file():
        index = json.loads(path.with_suffix(".json").read_text())
        if index.get("stamps") == stamps:
            return load_box_targets(path)
        LOG.info("%s: the Entities files, images or captions changed; rebuilding the box targets", path)
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)
    targets = build_box_targets(dataset, split, encoder_cfg, entities_dir, progress=progress)
    save_box_targets(path, targets, {"stamps": stamps, "grid_key": grid_key(encoder_cfg), "split": split,
                                     "entities_dir": str(entities_dir)})
    return targets
