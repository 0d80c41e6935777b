"""Readers for the layouts people download caption datasets in, all into one record list.

* Flickr8k, original release: an image folder, ``Flickr8k.token.txt`` (``<image>.jpg#<n>\\t<caption>``)
  and ``Flickr_8k.{train,dev,test}Images.txt``.
* Flickr8k, Kaggle copy: ``Images/`` + ``captions.txt`` (CSV with the header ``image,caption``).
* Karpathy's split JSON (``dataset_flickr8k.json``, ``dataset_flickr30k.json``, ``dataset_coco.json``).

Nothing in a download stops a reader, and nothing is dropped silently: captions whose image is
missing (a partial download, a withheld split), image names that would leave the image folder
(``..``, an absolute path, a path separator), malformed lines, captions with no word (empty,
whitespace or punctuation only) are skipped, and each one is listed in
``RawDataset.problems`` with its file and line (``skipped.json`` after preparation); a caption
repeated for the same image is kept (the official files hold a few) and listed as such. Caption files
must be UTF-8 (a byte-order mark is allowed); any other encoding is an error that names the file
and the line. Split names are normalised to train / val / test (Flickr8k's "dev" is "val";
Karpathy's "restval" is "train").
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import stat
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "restval": "train", "val": "val", "dev": "val", "valid": "val",
                  "validation": "val", "test": "test"}
IMAGE_DIR_NAMES = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images", "Flickr8k_Images")
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}


def normalize_split(name: str) -> str:
    """``dev`` -> ``val``, ``restval`` -> ``train``; unknown names raise ValueError."""
    try:
        return _SPLIT_ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown split {name!r}; use one of train, val (dev), test") from None


@dataclass
class ImageRecord:
    image_id: str  # unique key: the file name's stem for Flickr, the COCO id for COCO
    file_name: str  # path relative to the dataset's image directory
    split: str  # train | val | test
    captions: list[str]  # raw reference strings, never truncated
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. synthetic objects and groundings


@dataclass
class RawDataset:
    name: str
    image_dir: Path
    records: list[ImageRecord]
    layout: str
    skipped: Counter = field(default_factory=Counter)  # reason -> number of captions (or lines)
    missing_images: int = 0  # distinct images referenced but absent on disk
    # every skipped item: {"kind": "image" | "caption" | "line", "file", "reason", "line"?, "image"?}
    problems: list[dict[str, Any]] = field(default_factory=list)

    def split(self, name: str) -> list[ImageRecord]:
        name = normalize_split(name)
        return [r for r in self.records if r.split == name]

    def summary(self) -> dict[str, Any]:
        counts = {s: len(self.split(s)) for s in SPLITS}
        return {
            "name": self.name, "layout": self.layout, "image_dir": str(self.image_dir),
            "images": counts, "captions": {s: sum(len(r.captions) for r in self.split(s)) for s in SPLITS},
            "skipped": dict(self.skipped), "missing_images": self.missing_images,
        }


# ---------------------------------------------------------------------------------------- helpers
def read_text(path: Path) -> str:
    """A caption or split file as text: UTF-8 (a BOM is dropped); anything else is an error naming
    the file and the line, since guessing an encoding would silently change the references."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                         "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def name_problem(name: str) -> Optional[str]:
    """Why an image name from a caption file may not be opened (it would leave the image folder), or None."""
    if not name:
        return "empty image name"
    if "\x00" in name:
        return "NUL character in the image name"
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path: image names must be relative to the image folder"
    if "/" in name or "\\" in name:
        return "path separator in the image name: it must name a file of the image folder"
    if name in (".", ".."):
        return "not a file name"
    return None


def skip_image(skipped: Counter, problems: list[dict[str, Any]], file_name: str, reason: str, counter: str,
               captions: int) -> None:
    """Record an image left out with its captions: counted under ``counter`` (its captions, or the
    image itself for an ``images_...`` counter) and listed with its reason."""
    skipped[counter] += captions if counter.startswith("captions") else 1
    problems.append({"kind": "image", "file": file_name, "reason": reason, "captions": captions})


def has_words(caption: str) -> bool:
    """Whether a caption holds any word (letters or digits): empty, whitespace-only and
    punctuation-only captions do not."""
    return any(ch.isalnum() for ch in caption)


class _Captions:
    """Captions grouped by image, with every skipped line and caption recorded."""

    def __init__(self) -> None:
        self.grouped: "OrderedDict[str, list[str]]" = OrderedDict()
        self.skipped: Counter = Counter()
        self.problems: list[dict[str, Any]] = []

    def skip(self, reason: str, file: Path, line: Any, counter: str, image: Optional[str] = None) -> None:
        self.skipped[counter] += 1
        item = {"kind": "line" if image is None else "caption", "file": str(file), "line": line, "reason": reason}
        if image is not None:
            item["image"] = image
        self.problems.append(item)

    def add(self, image: str, caption: str, file: Path, line: Any) -> bool:
        """Keep ``caption`` for ``image`` unless it has no words or repeats one; True if kept."""
        caption = caption.strip()
        captions = self.grouped.setdefault(image, [])
        if not has_words(caption):
            self.skip("caption has no words (empty, whitespace or punctuation only)", file, line,
                      "captions_without_words", image)
            return False
        if caption in captions:  # kept: it is a reference as the dataset gives it (CIDEr counts it twice)
            self.skip("the same caption again for this image (kept, as the dataset gives it)", file, line,
                      "duplicate_captions_kept", image)
            self.problems[-1]["kept"] = True
        captions.append(caption)
        return True


def _find(root: Path, names: tuple[str, ...], want_dir: bool, depth: int = 2) -> Optional[Path]:
    """First path under ``root`` (up to ``depth`` levels) whose name is in ``names``."""
    frontier = [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in frontier:
            for name in names:
                p = folder / name
                if (p.is_dir() if want_dir else p.is_file()):
                    return p
            nxt += [p for p in sorted(folder.iterdir()) if p.is_dir()] if folder.is_dir() else []
        frontier = nxt
    return None


def _stem(file_name: str) -> str:
    return Path(file_name).stem


def _finish(name: str, layout: str, image_dir: Path, found: _Captions, splits: dict[str, str],
            extra: Optional[dict[str, dict]] = None, names: Optional[dict[str, str]] = None) -> RawDataset:
    """Drop images in no split, unsafe names and images missing on disk (counting their captions).

    ``names``: the name each image was given in the caption file, where it differs from the
    relative path (Karpathy's filepath/filename); the check of unsafe names applies to those."""
    records = []
    missing = 0
    skipped, problems = found.skipped, found.problems

    def drop(file_name: str, reason: str, counter: str, n: int) -> None:
        skip_image(skipped, problems, file_name, reason, counter, n)

    for file_name in splits:
        if not found.grouped.get(file_name) and file_name not in found.grouped:
            drop(file_name, "listed in a split but no caption names it", "images_without_captions", 0)
    for file_name, captions in found.grouped.items():
        split = splits.get(file_name)
        if split is None:
            skipped["captions_of_images_in_no_split"] += len(captions)
            continue
        if not captions:
            drop(file_name, "no usable caption", "images_without_captions", 0)
            continue
        problem = next((p for p in map(name_problem, (names or {}).get(file_name, [file_name])) if p), None)
        if problem:
            drop(file_name, problem, "captions_of_unsafe_image_names", len(captions))
            continue
        try:
            is_file = stat.S_ISREG(os.stat(image_dir / file_name).st_mode)
        except FileNotFoundError:
            missing += 1
            drop(file_name, "file not found", "captions_of_missing_images", len(captions))
            continue
        except OSError as exc:  # e.g. a symlink loop, no permission
            drop(file_name, f"cannot be read ({exc.strerror or exc})", "captions_of_unreadable_images", len(captions))
            continue
        if not is_file:
            drop(file_name, "not a file (a folder?)", "captions_of_unreadable_images", len(captions))
            continue
        records.append(ImageRecord(_stem(file_name), file_name, split, captions,
                                   (extra or {}).get(file_name, {})))
    if not records:
        raise FileNotFoundError(
            f"{name}: no usable image in {image_dir} (skipped: {dict(skipped)}); check that the images "
            "were downloaded and unpacked there")
    return RawDataset(name, image_dir, records, layout, skipped, missing, problems)


# ---------------------------------------------------------------------------------------- Flickr8k
def read_flickr8k(root: str | Path, image_dir: Optional[str | Path] = None, split_seed: int = 0) -> RawDataset:
    """Read Flickr8k under ``root`` in whichever layout it is (original, Kaggle or Karpathy JSON)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Flickr8k folder not found: {root}. Download Flickr8k (images + Flickr8k.token.txt and the "
            "split lists, or the Kaggle copy with captions.txt, or Karpathy's dataset_flickr8k.json) "
            "and point data.root at it, e.g. --set data.root=/path/to/flickr8k")
    token_file = _find(root, (TOKEN_FILE,), want_dir=False)
    if token_file is not None:
        return _read_original(root, token_file, image_dir)
    captions_csv = _find(root, ("captions.txt",), want_dir=False)
    if captions_csv is not None:
        return _read_kaggle(root, captions_csv, image_dir, split_seed)
    karpathy = _find(root, ("dataset_flickr8k.json",), want_dir=False)
    if karpathy is not None:
        img = Path(image_dir) if image_dir else _find(root, IMAGE_DIR_NAMES, want_dir=True) or root
        return read_karpathy(karpathy, img)
    raise FileNotFoundError(
        f"{root}: no Flickr8k caption file found (looked for {TOKEN_FILE}, captions.txt, "
        "dataset_flickr8k.json up to two folders deep)")


def _image_dir(root: Path, image_dir: Optional[str | Path]) -> Path:
    if image_dir:
        return Path(image_dir)
    found = _find(root, IMAGE_DIR_NAMES, want_dir=True)
    if found is None:
        raise FileNotFoundError(f"{root}: no image folder found (looked for {', '.join(IMAGE_DIR_NAMES)}); "
                                "set data.image_dir")
    return found


def _read_split_lists(folder: Path, root: Path) -> Optional[dict[str, str]]:
    splits: dict[str, str] = {}
    for split, fname in SPLIT_FILES.items():
        path = folder / fname if (folder / fname).is_file() else _find(root, (fname,), want_dir=False)
        if path is None:
            return None
        for line in read_text(path).splitlines():
            if line.strip():
                splits[line.strip()] = split
    return splits


def _read_original(root: Path, token_file: Path, image_dir: Optional[str | Path]) -> RawDataset:
    found = _Captions()
    for number, line in enumerate(read_text(token_file).splitlines(), 1):
        if not line.strip():
            found.skipped["empty_lines"] += 1
            continue
        key, sep, caption = line.partition("\t")
        file_name, hash_, _ = key.partition("#")
        if not sep or not hash_:
            found.skip("not '<image>#<n><TAB><caption>'", token_file, number, "malformed_lines")
            continue
        found.add(file_name.strip(), caption, token_file, number)
    splits = _read_split_lists(token_file.parent, root)
    if splits is None:
        raise FileNotFoundError(f"{root}: found {TOKEN_FILE} but not the split lists "
                                f"{', '.join(SPLIT_FILES.values())}")
    return _finish("flickr8k", "original", _image_dir(root, image_dir), found, splits)


def _read_kaggle(root: Path, captions_csv: Path, image_dir: Optional[str | Path], split_seed: int
                 ) -> RawDataset:
    found = _Captions()
    reader = csv.reader(io.StringIO(read_text(captions_csv), newline=""))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
        raise ValueError(f"{captions_csv}: expected the header 'image,caption', got {header}")
    for row in reader:
        if not row or not "".join(row).strip():
            found.skipped["empty_lines"] += 1
            continue
        if len(row) < 2:
            found.skip("not 'image,caption'", captions_csv, reader.line_num, "malformed_lines")
            continue
        caption = ",".join(row[1:])  # unquoted commas inside a caption
        found.add(row[0].strip(), caption, captions_csv, reader.line_num)
    splits = _read_split_lists(captions_csv.parent, root)
    layout = "kaggle"
    if splits is None:
        splits = _seeded_split(list(found.grouped), split_seed)
        layout = "kaggle (no split lists found: seeded 6000/1000/1000-proportional split)"
    return _finish("flickr8k", layout, _image_dir(root, image_dir), found, splits)


def _seeded_split(file_names: list[str], seed: int) -> dict[str, str]:
    """The standard 6000/1000/rest proportions over a seeded shuffle of the sorted names."""
    names = sorted(file_names)
    random.Random(seed).shuffle(names)
    n = len(names)
    n_val = n_test = round(n * 1000 / 8091)
    n_train = n - n_val - n_test
    return {f: ("train" if i < n_train else "val" if i < n_train + n_val else "test")
            for i, f in enumerate(names)}


# ---------------------------------------------------------------------------------------- Karpathy
def read_karpathy(json_path: str | Path, image_dir: str | Path) -> RawDataset:
    """Karpathy's split JSON (Flickr8k, Flickr30k, COCO, and the synthetic shapes data)."""
    json_path, image_dir = Path(json_path), Path(image_dir)
    if not json_path.is_file():
        raise FileNotFoundError(f"Karpathy split file not found: {json_path}")
    data = json.loads(read_text(json_path))
    found = _Captions()
    splits: dict[str, str] = {}
    extra: dict[str, dict] = {}
    ids: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    for i, img in enumerate(data["images"]):
        file_name = f"{img['filepath']}/{img['filename']}" if img.get("filepath") else img["filename"]
        names[file_name] = [img["filepath"], img["filename"]] if img.get("filepath") else [img["filename"]]
        found.grouped.setdefault(file_name, [])
        kept = [found.add(file_name, sent.get("raw") or " ".join(sent.get("tokens", [])), json_path,
                          f"images[{i}].sentences[{j}]") for j, sent in enumerate(img.get("sentences", []))]
        splits[file_name] = normalize_split(img.get("split", "train"))
        if "cocoid" in img:
            ids[file_name] = str(img["cocoid"])
        keep = {k: v for k, v in img.items() if k not in ("sentences", "filename", "filepath", "split",
                                                           "sentids", "imgid", "cocoid")}
        if any("groundings" in s for s in img.get("sentences", [])):
            keep["groundings"] = [s.get("groundings") for s, k in zip(img["sentences"], kept) if k]
        extra[file_name] = keep
    ds = _finish(data.get("dataset", json_path.stem), "karpathy", image_dir, found, splits, extra, names)
    for r in ds.records:
        r.image_id = ids.get(r.file_name, r.image_id)
    return ds
