"""Nothing silently wrong: a Flickr8k-layout folder with broken files among good ones.

The corpus is built here: a 0-byte file, a text file named .jpg, a truncated JPEG, a directory
named .jpg, a symlink loop, names that leave the image folder, an image with no caption, repeated,
empty and punctuation-only captions, a malformed line, Windows line endings and a BOM. Preparation
must keep every good image, skip each broken one and name it with its reason; extraction, a
training epoch and captioning must then run; nothing may be overwritten or crash with a traceback.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_config
from show_attend.data.images import ImageError, open_image
from show_attend.data.prepare import format_summary, prepare_dataset
from show_attend.data.sources import name_problem, read_flickr8k

N_GOOD = 50
WORDS = ["red", "blue", "green", "circle", "square", "left", "right", "big", "small", "dog"]


def _good_image(i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))


def _caption(i: int, k: int) -> str:
    rng = np.random.default_rng(1000 * i + k)
    return "a " + " ".join(rng.choice(WORDS, 5)) + " ."


BROKEN = {  # file name -> what preparation must say about it
    "b_empty.jpg": "empty file",
    "b_text.jpg": "not an image",
    "b_truncated.jpg": "corrupt or truncated",
    "b_folder.jpg": "not a file",
    "b_loop.jpg": "cannot be read",
    "../escape.jpg": "path separator",
    "/etc/passwd": "absolute path",
    "sub/inner.jpg": "path separator",
    "b_missing.jpg": "file not found",
}


def make_corpus(root: Path) -> Path:
    images = root / "Flicker8k_Dataset"
    images.mkdir(parents=True)
    good = [f"g{i:03d}.jpg" for i in range(N_GOOD)]
    for i, name in enumerate(good):
        _good_image(i).save(images / name, quality=90)
    (images / "b_empty.jpg").write_bytes(b"")
    (images / "b_text.jpg").write_text("this is not a JPEG\n")
    buf = io.BytesIO()
    _good_image(99).resize((256, 256)).save(buf, "JPEG", quality=95)
    (images / "b_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (images / "b_folder.jpg").mkdir()
    os.symlink("b_loop.jpg", images / "b_loop.jpg")  # a symlink to itself
    (root / "escape.jpg").write_bytes((images / good[0]).read_bytes())  # readable, but outside the folder
    (images / "sub").mkdir()
    _good_image(98).save(images / "sub" / "inner.jpg")
    _good_image(97).save(images / "g_nocaption.jpg")
    text = root / "Flickr8k_text"
    text.mkdir()
    lines = []
    for i, name in enumerate(good):
        lines += [f"{name}#{k}\t{_caption(i, k)}" for k in range(5)]
    lines.append(f"{good[0]}#5\t{_caption(0, 0)}")  # the same caption again
    lines.append(f"{good[1]}#5\t  ...  ")  # punctuation only
    lines.append(f"{good[1]}#6\t")  # empty
    lines.append("a line without a tab or a hash")  # malformed
    for name in BROKEN:
        lines += [f"{name}#{k}\ta red circle number {k} on the left ." for k in range(5)]
    (text / "Flickr8k.token.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    splits = {"train": good[:40] + list(BROKEN) + ["g_nocaption.jpg"], "val": good[40:45], "test": good[45:]}
    for split, fname in (("train", "Flickr_8k.trainImages.txt"), ("val", "Flickr_8k.devImages.txt"),
                         ("test", "Flickr_8k.testImages.txt")):
        (text / fname).write_text("\r\n".join(splits[split]) + "\r\n")
    return root


def _flickr_config(root: Path, *overrides: str):
    return tiny_config(root, "data.source=flickr8k", f"data.root={root / 'f8k'}", "data.min_word_count=1",
                       "encoder.image_size=64", "data.synthetic.image_size=64", *overrides)


def test_prepare_keeps_every_good_image_and_names_each_broken_one(tmp_path):
    make_corpus(tmp_path / "f8k")
    cfg = _flickr_config(tmp_path)
    ds = prepare_dataset(cfg.data, progress=False)
    assert len(ds.images) == N_GOOD  # every good image, none of the broken ones
    assert {im.split: 0 for im in ds.images} and len(ds.split("train")) == 40
    problems = ds.problems()
    by_file = {p["file"]: p for p in problems if p["kind"] == "image"}
    for name, reason in BROKEN.items():
        assert reason in by_file[name]["reason"], (name, by_file.get(name))
        assert by_file[name]["captions"] == 5
    assert "no caption" in by_file["g_nocaption.jpg"]["reason"]
    captions = {(p["reason"].split(" (")[0], p["line"]) for p in problems if p["kind"] in ("caption", "line")}
    n = 5 * N_GOOD
    assert ("the same caption again for this image", n + 1) in captions  # listed, and kept
    assert ("caption has no words", n + 2) in captions and ("caption has no words", n + 3) in captions
    assert ("not '<image>#<n><TAB><caption>'", n + 4) in captions
    # the references are the captions as written: no BOM, no \r, no duplicate, no empty one
    first = ds.split("train")[0]
    assert first.captions[0] == _caption(0, 0) and len(first.captions) == 6  # the repeat is a reference
    assert all("\r" not in c and "\ufeff" not in c for im in ds.images for c in im.captions)
    # the summary names them; skipped.json lists every one
    text = format_summary(ds.summary, problems, max_listed=100)
    for name in BROKEN:
        assert name in text
    assert json.loads((ds.root / "skipped.json").read_text())["problems"] == problems
    # a second preparation re-opens nothing that did not change (the check is cached by file stamp)
    check = json.loads((ds.root / "image_check.json").read_text())
    assert check["files"]["b_truncated.jpg"][2].startswith("corrupt or truncated")


def test_extract_train_and_caption_run_on_the_broken_corpus(tmp_path, capsys):
    from show_attend.cli import caption_main
    from show_attend.training.trainer import train

    make_corpus(tmp_path / "f8k")
    cfg = _flickr_config(tmp_path, "train.epochs=1", "name=broken")
    run = train(cfg, progress=False)
    assert (run / "best.pt").is_file() and (run / "history.jsonl").is_file()
    images = tmp_path / "f8k" / "Flicker8k_Dataset"
    good, broken = images / "g000.jpg", images / "b_truncated.jpg"
    code = caption_main([str(good), str(broken), str(images / "b_empty.jpg"), "--checkpoint", str(run)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(f"{good}\t") and len(out.strip().splitlines()) == 1  # the good image is captioned
    assert f"{broken}: corrupt or truncated" in err and "b_empty.jpg: empty file" in err
    assert "2 of 3 images could not be read" in err and "Traceback" not in err


def test_an_image_that_breaks_after_preparation_is_left_out_and_named(tmp_path, caplog):
    from show_attend.data.features import ensure_features
    from show_attend.data.loaders import ImageDataset

    make_corpus(tmp_path / "f8k")
    cfg = _flickr_config(tmp_path)
    ds = prepare_dataset(cfg.data, progress=False)
    victim = ds.split("val")[0]
    (ds.image_dir / victim.file_name).write_bytes(b"\xff\xd8 broken now")
    store = ensure_features(ds, cfg.encoder, "val", progress=False)
    assert victim.image_id in store.unreadable and "not an image" in store.unreadable[victim.image_id]
    items = ImageDataset(ds, "val", store)
    assert victim.image_id not in items.image_ids and len(items) == len(ds.split("val")) - 1
    assert any(victim.image_id in r.message for r in caplog.records)


def test_a_caption_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    root = make_corpus(tmp_path / "f8k")
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    token.write_bytes(token.read_bytes()[3:].replace(b"a red", "a r\u00e9d".encode("latin-1"), 1))
    line = token.read_bytes()[: token.read_bytes().index(b"r\xe9d")].count(b"\n") + 1
    with pytest.raises(ValueError, match=rf"Flickr8k.token.txt: line {line} is not UTF-8"):
        read_flickr8k(root)


@pytest.mark.parametrize("name, problem", [("a.jpg", None), ("../a.jpg", "path separator"),
                                           ("/abs/a.jpg", "absolute"), ("C:\\a.jpg", "absolute"),
                                           ("a\\b.jpg", "path separator"), ("..", "not a file name")])
def test_image_names_stay_inside_the_image_folder(name, problem):
    got = name_problem(name)
    assert (got is None) if problem is None else (problem in got)


# ------------------------------------------------------------------ the one image-opening path
def test_open_image_converts_every_mode_without_clipping(tmp_path):
    ramp16 = (np.arange(64, dtype=np.uint16)[None, :].repeat(8, 0) * 1024)  # 0 .. 64512
    Image.fromarray(ramp16).save(tmp_path / "g16.png")
    rgb = np.asarray(open_image(tmp_path / "g16.png"))
    assert rgb.shape == (8, 64, 3) and rgb[0, 0, 0] == 0 and 250 <= rgb[0, -1, 0] <= 252  # scaled, not all white
    assert len(np.unique(rgb[0, :, 0])) > 50
    f = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32)[None, :].repeat(4, 0), "F")
    assert np.asarray(open_image(f))[0, -1, 0] == 255 and np.asarray(open_image(f))[0, 0, 0] == 0
    i32 = Image.fromarray((np.arange(64, dtype=np.int32)[None, :] * 100_000).repeat(4, 0), "I")
    assert np.asarray(open_image(i32))[0, -1, 0] == 255 and np.asarray(open_image(i32))[0, 32, 0] in (129, 130)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red over white
    assert np.asarray(open_image(rgba))[0, 0].tolist() == [255, 255, 255]
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    assert np.asarray(open_image(cmyk))[0, 0].tolist() == [255, 0, 0]
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    assert np.asarray(open_image(palette))[0, 0].tolist() == [0, 0, 255]


def test_open_image_applies_exif_orientation_and_caps_pixels(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 20))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    shown = open_image(tmp_path / "rot.jpg")
    assert shown.size == (20, 40)  # upright: portrait
    assert np.asarray(shown)[2, 10, 0] > 200 and np.asarray(shown)[-3, 10, 0] < 50  # white on top
    with pytest.raises(ImageError, match=r"big.png: 2000x2000 = 4,000,000 pixels, more than the limit"):
        Image.new("L", (2000, 2000)).save(tmp_path / "big.png")
        open_image(tmp_path / "big.png", max_pixels=1_000_000)
    with pytest.raises(ImageError, match="file not found"):
        open_image(tmp_path / "nothing.png")
