"""The three Flickr8k layouts (original, Kaggle, Karpathy JSON) on small generated files."""
import json
from pathlib import Path

import pytest
from PIL import Image

from show_attend.data.sources import read_flickr8k, read_karpathy

NAMES = {"train": ["1000_a.jpg", "1001_b.jpg", "1002_c.jpg"], "val": ["2000_d.jpg"], "test": ["3000_e.jpg"]}
MISSING = "3000_e.jpg"  # listed in a split, captions present, image absent (a withheld test split)
STRAY = "2258277193_586949ec62.jpg.1"


def _captions(name):
    return [f"A dog number {i} runs on {name[:4]} grass ." for i in range(5)]


def _images(folder: Path):
    folder.mkdir(parents=True)
    for names in NAMES.values():
        for n in names:
            if n != MISSING:
                Image.new("RGB", (40, 30), (120, 30, 30)).save(folder / n)


def _split_lists(folder: Path):
    for split, fname in (("train", "Flickr_8k.trainImages.txt"), ("val", "Flickr_8k.devImages.txt"),
                         ("test", "Flickr_8k.testImages.txt")):
        (folder / fname).write_text("\n".join(NAMES[split]) + "\n")


def make_original(root: Path):
    _images(root / "Flicker8k_Dataset")
    text = root / "Flickr8k_text"
    text.mkdir()
    lines = []
    for names in NAMES.values():
        for n in names:
            lines += [f"{n}#{i}\t{c}" for i, c in enumerate(_captions(n))]
    lines.insert(3, "")  # an empty line
    lines.append(f"{STRAY}#0\tA stray caption of an image in no split .")
    (text / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    _split_lists(text)


def make_kaggle(root: Path, with_splits: bool = True):
    _images(root / "Images")
    rows = ["image,caption"]
    for names in NAMES.values():
        for n in names:
            rows += [f'{n},"{c}"' for c in _captions(n)]
    rows.insert(2, "")
    rows.append(f"{STRAY},A stray caption, with a comma .")
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    if with_splits:
        _split_lists(root)


def make_karpathy(root: Path):
    _images(root / "Images")
    images = []
    for split, names in NAMES.items():
        for n in names:
            images.append({"filename": n, "imgid": len(images), "split": split,
                           "sentences": [{"raw": c, "tokens": c.lower().split()} for c in _captions(n)]})
    (root / "dataset_flickr8k.json").write_text(json.dumps({"dataset": "flickr8k", "images": images}))


@pytest.mark.parametrize("maker", [make_original, make_kaggle, make_karpathy])
def test_layouts_read_the_same(tmp_path, maker):
    maker(tmp_path)
    ds = read_flickr8k(tmp_path)
    assert [r.file_name for r in ds.split("train")] == NAMES["train"]
    assert [r.file_name for r in ds.split("dev")] == NAMES["val"]
    assert ds.split("test") == []  # its only image is missing
    assert ds.missing_images == 1
    assert ds.skipped["captions_of_missing_images"] == 5
    first = ds.split("train")[0]
    assert first.image_id == "1000_a"
    assert first.captions == _captions("1000_a.jpg")
    summary = ds.summary()
    assert summary["images"] == {"train": 3, "val": 1, "test": 0}
    assert summary["captions"]["train"] == 15


@pytest.mark.parametrize("maker", [make_original, make_kaggle])
def test_stray_key_and_empty_line_are_counted(tmp_path, maker):
    maker(tmp_path)
    ds = read_flickr8k(tmp_path)
    assert ds.skipped["captions_of_images_in_no_split"] == 1  # 2258277193_586949ec62.jpg.1
    assert ds.skipped["empty_lines"] == 1
    assert all(STRAY not in r.file_name for r in ds.records)


def test_kaggle_without_split_lists_gets_a_seeded_split(tmp_path):
    make_kaggle(tmp_path, with_splits=False)
    a, b = read_flickr8k(tmp_path), read_flickr8k(tmp_path)
    assert [(r.file_name, r.split) for r in a.records] == [(r.file_name, r.split) for r in b.records]
    assert "seeded" in a.layout


def test_karpathy_coco_filepath_and_restval(tmp_path):
    (tmp_path / "val2014").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val2014" / "COCO_val2014_000000000042.jpg")
    data = {"dataset": "coco", "images": [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "cocoid": 42, "split": "restval",
         "sentences": [{"raw": "A cat on a mat.", "tokens": ["a", "cat", "on", "a", "mat"]}]}]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(data))
    ds = read_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    (rec,) = ds.records
    assert rec.image_id == "42" and rec.split == "train"
    assert rec.file_name == "val2014/COCO_val2014_000000000042.jpg"


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.root"):
        read_flickr8k(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no Flickr8k caption file"):
        read_flickr8k(tmp_path)
