"""A prepared dataset: splits, tokenised captions and the vocabulary (TRAIN split only), on disk.

    cache_dir/dataset.json   images with split, raw captions, tokens (and synthetic extras)
    cache_dir/vocab.json     the vocabulary
    cache_dir/summary.json   counts: images, captions, vocabulary size, skipped and missing
    cache_dir/skipped.json   every skipped image, caption and line, with its file, line and reason
    cache_dir/image_check.json  the image check's results by file stamp (see verify.py)

Every image is opened once (a full decode) before it is used: broken, missing or unsafe images are
skipped with their captions and named, so extraction and training never meet a broken file.

``prepare_dataset(cfg.data)`` is idempotent: it re-reads the raw files only when the data settings
changed since the last preparation.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from ..metrics.ptb_tokenizer import tokenize
from ..utils.files import atomic_write_json
from .verify import verify_images
from .vocab import Vocabulary
from .sources import (SPLITS, ImageRecord, RawDataset, normalize_split, read_flickr8k, read_karpathy,
                      skip_image)

LOG = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: images verified at preparation, skipped.json


@dataclass
class PreparedImage:
    image_id: str
    file_name: str
    split: str
    captions: list[str]  # raw references (for metrics), never truncated
    tokens: list[list[str]]  # tokenize(caption) for each caption
    extra: dict[str, Any]


class PreparedDataset:
    def __init__(self, root: Path, image_dir: Path, images: list[PreparedImage], vocab: Vocabulary,
                 summary: dict[str, Any]):
        self.root = root
        self.image_dir = image_dir
        self.images = images
        self.vocab = vocab
        self.summary = summary

    def problems(self) -> list[dict[str, Any]]:
        """Everything preparation skipped (``skipped.json``): images, captions, lines, with reasons."""
        path = self.root / "skipped.json"
        return json.loads(path.read_text())["problems"] if path.is_file() else []

    def split(self, name: str) -> list[PreparedImage]:
        name = normalize_split(name)
        return [im for im in self.images if im.split == name]

    def references(self, split: str) -> dict[str, list[str]]:
        """image_id -> raw reference captions (what metrics are computed against)."""
        return {im.image_id: im.captions for im in self.split(split)}

    @classmethod
    def load(cls, root: str | Path) -> "PreparedDataset":
        root = Path(root)
        if not (root / "dataset.json").is_file():
            raise FileNotFoundError(f"no prepared dataset in {root}; run tools/prepare_data.py first")
        data = json.loads((root / "dataset.json").read_text())
        images = [PreparedImage(**im) for im in data["images"]]
        summary = json.loads((root / "summary.json").read_text())
        return cls(root, Path(data["image_dir"]), images, Vocabulary.load(root / "vocab.json"), summary)


def _params(data_cfg) -> dict[str, Any]:
    params = {"format": FORMAT_VERSION, "source": data_cfg.source, "root": str(data_cfg.root),
              "karpathy_json": data_cfg.karpathy_json, "image_dir": data_cfg.image_dir,
              "min_word_count": data_cfg.min_word_count}
    if data_cfg.source == "synthetic":
        from .synthetic import GENERATOR_VERSION

        params["synthetic"] = dict(asdict(data_cfg.synthetic), generator_version=GENERATOR_VERSION)
    return params


def read_raw(data_cfg, progress: bool = True) -> RawDataset:
    """Read (or, for ``synthetic``, generate) the raw dataset a DataConfig names."""
    if data_cfg.source == "synthetic":
        from .synthetic import generate_shapes_dataset

        s = data_cfg.synthetic
        root = generate_shapes_dataset(data_cfg.root, num_train=s.num_train, num_val=s.num_val,
                                       num_test=s.num_test, image_size=s.image_size, seed=s.seed,
                                       progress=progress, texture=s.texture)
        return read_karpathy(Path(root) / "dataset_shapes.json", Path(root) / "images")
    if data_cfg.source == "flickr8k":
        return read_flickr8k(data_cfg.root, data_cfg.image_dir)
    if data_cfg.source == "karpathy":
        if not data_cfg.karpathy_json:
            raise ValueError("data.source=karpathy needs data.karpathy_json (e.g. dataset_coco.json)")
        image_dir = data_cfg.image_dir or data_cfg.root
        return read_karpathy(data_cfg.karpathy_json, image_dir)
    raise ValueError(f"unknown data.source {data_cfg.source!r}")


def prepare_dataset(data_cfg, force: bool = False, progress: bool = True) -> PreparedDataset:
    """Read the raw dataset, tokenise, build the vocabulary from TRAIN only, write ``cache_dir``."""
    out = Path(data_cfg.cache_dir)
    params = _params(data_cfg)
    summary_path = out / "summary.json"
    if not force and summary_path.is_file():
        try:
            if json.loads(summary_path.read_text()).get("params") == params:
                return PreparedDataset.load(out)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    raw = read_raw(data_cfg, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    broken = verify_images(raw.image_dir, [r.file_name for r in raw.records], out, progress)
    if broken:
        for r in raw.records:
            if r.file_name in broken:
                skip_image(raw.skipped, raw.problems, r.file_name, broken[r.file_name], "captions_of_broken_images",
                           len(r.captions))
        raw.records = [r for r in raw.records if r.file_name not in broken]
        if not raw.records:
            raise ValueError(f"{raw.image_dir}: none of the images can be opened (e.g. "
                             f"{next(iter(broken))}: {next(iter(broken.values()))})")
    images = [_prepare_record(r) for r in raw.records]
    train_tokens = (toks for im in images if im.split == "train" for toks in im.tokens)
    vocab = Vocabulary.build(train_tokens, min_count=data_cfg.min_word_count)
    if len(vocab) <= 4:
        raise ValueError(f"the vocabulary is empty: no TRAIN word occurs {data_cfg.min_word_count} times "
                         "(lower data.min_word_count, or check the train split)")
    summary = raw.summary()
    summary.update(
        vocab_size=len(vocab), min_word_count=data_cfg.min_word_count,
        train_tokens_unk_rate=_unk_rate(images, vocab),
        max_caption_words={s: max((len(t) for im in images if im.split == s for t in im.tokens), default=0)
                           for s in SPLITS},
        params=params,
    )
    summary["skipped_files"] = len([p for p in raw.problems if p["kind"] == "image"])
    atomic_write_json(out / "skipped.json", {"problems": raw.problems}, indent=1)
    atomic_write_json(out / "dataset.json", {"image_dir": str(raw.image_dir), "name": raw.name,
                                             "images": [asdict(im) for im in images]}, indent=None)
    vocab.save(out / "vocab.json")
    atomic_write_json(summary_path, summary, indent=None)
    return PreparedDataset(out, raw.image_dir, images, vocab, summary)


def _prepare_record(r: ImageRecord) -> PreparedImage:
    return PreparedImage(r.image_id, r.file_name, r.split, r.captions, [tokenize(c) for c in r.captions],
                         r.extra)


def _unk_rate(images: list[PreparedImage], vocab: Vocabulary) -> float:
    total = unk = 0
    for im in images:
        if im.split != "train":
            continue
        for toks in im.tokens:
            total += len(toks)
            unk += sum(t not in vocab for t in toks)
    return round(unk / max(total, 1), 5)


def format_summary(summary: dict[str, Any], problems: Optional[list[dict[str, Any]]] = None,
                   max_listed: int = 20, skipped_json: Optional[Path] = None) -> str:
    """A short human-readable summary (printed by tools/prepare_data.py), naming the first
    ``max_listed`` skipped images, captions and lines with their reasons."""
    lines = [f"dataset {summary['name']} ({summary['layout']} layout), images from {summary['image_dir']}"]
    for s in SPLITS:
        lines.append(f"  {s:5s}: {summary['images'][s]:6d} images, {summary['captions'][s]:7d} captions")
    lines.append(f"  vocabulary: {summary['vocab_size']} words (min count {summary['min_word_count']}, "
                 f"train split only; {100 * summary['train_tokens_unk_rate']:.2f}% of train tokens are <unk>)")
    skipped = summary.get("skipped") or {}
    if skipped or summary.get("missing_images"):
        lines.append(f"  skipped: {', '.join(f'{v} {k}' for k, v in sorted(skipped.items()))}"
                     f"; {summary.get('missing_images', 0)} images missing on disk")
    else:
        lines.append("  skipped: nothing")
    for item in (problems or [])[:max_listed]:
        where = f"{item['file']}" + (f":{item['line']}" if item.get("line") is not None else "")
        what = f" ({item['image']})" if item.get("image") else ""
        lines.append(f"    {item['kind']:7s} {where}{what}: {item['reason']}")
    if problems and len(problems) > max_listed:
        lines.append(f"    ... and {len(problems) - max_listed} more: every one is in {skipped_json or 'skipped.json'}")
    return "\n".join(lines)
