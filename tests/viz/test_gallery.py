"""Attention galleries: figures for image files, and a split gallery with its static HTML page."""
from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend.viz import gallery
from show_attend.api import AttentionResult, Captioner
from show_attend.model.decoding import Decoded
from show_attend.metrics import score_captions
from show_attend.data.transforms import ImageTransform


@pytest.fixture(scope="module")
def captioner(trained_run):
    run_dir, _ = trained_run
    return Captioner.from_checkpoint(run_dir / "best.pt", device="cpu")


class _Links(HTMLParser):
    """Collects the src / href attributes of a page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def _photos(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    rgba = tmp_path / "in" / "wide photo.png"  # non-square, RGBA, a space in the name
    rgba.parent.mkdir()
    Image.fromarray(rng.integers(0, 256, (90, 160, 4), dtype=np.uint8), "RGBA").save(rgba)
    gray = tmp_path / "in" / "tall.jpg"  # grayscale JPEG
    Image.fromarray(rng.integers(0, 256, (100, 60), dtype=np.uint8), "L").save(gray)
    return [rgba, gray]


def test_render_images_writes_figures_gifs_and_captions(captioner, tmp_path):
    photos = _photos(tmp_path)
    out = tmp_path / "out"
    paths = gallery.render_images(captioner, photos, out, beam_size=1, fmt=("png", "pdf"), gif=True,
                                  cmap="viridis")
    expected = [captioner.caption(p, beam_size=1) for p in photos]
    captions = json.loads((out / "captions.json").read_text())
    assert captions == {str(p): c for p, c in zip(photos, expected)}
    names = {p.name for p in paths}
    assert {"wide_photo.png", "wide_photo.pdf", "tall.png", "tall.pdf"} <= names
    for stem, caption in (("wide_photo", expected[0]), ("tall", expected[1])):
        assert (f"{stem}.gif" in names) == bool(caption)  # one GIF frame per word: none if empty
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert all(p.parent == out for p in paths)
    with Image.open(out / "wide_photo.png") as fig:
        w, h = fig.size
        assert 150 <= w <= 4000 and 100 <= h <= 4000
    with Image.open(out / "tall.png") as fig:
        assert 100 <= fig.size[0] <= 4000 and 100 <= fig.size[1] <= 4000
    assert (out / "wide_photo.pdf").read_bytes().startswith(b"%PDF")
    if (out / "wide_photo.gif").exists():
        with Image.open(out / "wide_photo.gif") as gif:
            assert gif.n_frames == len(expected[0].split())


def test_render_images_uses_the_encoders_crop_and_unique_names(captioner, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    Image.new("RGB", (160, 80), (200, 30, 30)).save(a / "x.png")
    Image.new("RGB", (50, 120), (30, 30, 200)).save(b / "x.png")
    seen = []
    real_plot = gallery.plot_attention

    def spy(image, words, alphas, betas, crop_box, **kwargs):
        seen.append((image.size, crop_box, len(words), np.asarray(alphas).shape))
        return real_plot(image, words, alphas, betas, crop_box, **kwargs)

    monkeypatch.setattr(gallery, "plot_attention", spy)
    monkeypatch.setattr(captioner, "transform", ImageTransform(112, "center_crop"))
    paths = gallery.render_images(captioner, [a / "x.png", b / "x.png"], tmp_path / "out", beam_size=1)
    assert [p.name for p in paths] == ["x.png", "x_2.png"]
    assert [s[1] for s in seen] == [(40.0, 0.0, 120.0, 80.0), (0.0, 35.0, 50.0, 85.0)]
    for size, _, n_words, shape in seen:
        assert shape[0] == n_words and int(np.prod(shape[1:])) == 49  # the 7x7 grid of the checkpoint


def test_unsupported_format_is_rejected(captioner, tmp_path):
    with pytest.raises(ValueError, match="unsupported figure format"):
        gallery.render_images(captioner, [], tmp_path, fmt="jpg")


def test_split_gallery_page(trained_run, captioner, tmp_path):
    run_dir, cfg = trained_run
    index = gallery.render_split_gallery(run_dir / "best.pt", "test", 3, tmp_path / "gal", beam_size=1,
                                         device="cpu", seed=1)
    assert index == tmp_path / "gal" / "index.html"
    page = index.read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags  # self-contained
    figures = [link for link in parser.links if link.endswith(".png")]
    assert len(set(figures)) == 3
    for link in parser.links:
        assert "://" not in link and not link.startswith("/")  # relative, opens from disk
        assert (index.parent / unquote(link)).is_file(), link
    for link in set(figures):
        with Image.open(index.parent / unquote(link)) as fig:
            assert fig.size[0] >= 200 and fig.size[1] >= 100

    data = json.loads((index.parent / "gallery.json").read_text())
    assert data["info"]["images_shown"] == 3 and data["info"]["images_in_split"] == 6
    assert "IDF" in page and "6 images" in page
    from show_attend.data.prepare import prepare_dataset

    dataset = prepare_dataset(cfg.data, progress=False)
    test_refs = dataset.references("test")
    direct = captioner.caption([e["source"] for e in data["entries"]], beam_size=1)
    for entry, caption in zip(data["entries"], direct):
        assert entry["references"] == test_refs[entry["image_id"]]
        assert entry["caption"] == caption  # the attention shown is that of this caption
        assert html.escape(entry["caption"] or "(empty caption)") in page
        for ref in entry["references"]:
            assert html.escape(ref) in page
        assert 0.0 <= entry["cider"] <= 10.0
        assert f"CIDEr-D {entry['cider']:.3f}" in page
        assert entry["grounding"] is None or entry["grounding"]["n_samples"] == 1
    ids = [im.image_id for im in dataset.split("test")]
    assert [e["image_id"] for e in data["entries"]] == gallery.select_images(ids, 3, seed=1)


def test_per_image_cider_uses_the_whole_splits_idf():
    refs = {f"im{i}": [f"a {c} {s} next to a {c2} circle" for c2 in ("red", "blue")]
            for i, (c, s) in enumerate([("red", "square"), ("green", "square"), ("blue", "triangle"),
                                        ("red", "triangle"), ("yellow", "circle")])}
    captions = {"im0": "a red square next to a green circle", "im3": "a red triangle",
                "im1": "a green square", "im2": "a blue square next to a circle", "im4": "a circle"}
    full = score_captions(captions, refs, tokenizer="python", metrics=("CIDEr",)).per_image["CIDEr"]
    subset = gallery.per_image_cider({k: captions[k] for k in ("im0", "im3")}, refs, tokenizer="python")
    assert set(subset) == {"im0", "im3"}
    for k in subset:
        assert subset[k] == pytest.approx(full[k], abs=1e-9)
    alone = score_captions({"im0": captions["im0"], "im3": captions["im3"]},
                           {"im0": refs["im0"], "im3": refs["im3"]}, tokenizer="python",
                           metrics=("CIDEr",)).per_image["CIDEr"]
    assert alone["im0"] != pytest.approx(subset["im0"])  # the subset's own IDF would differ
    with pytest.raises(KeyError):
        gallery.per_image_cider({"nope": "a"}, refs, tokenizer="python")


def test_grounding_of_a_caption_in_a_center_cropped_photo():
    # A 160x80 photo, center crop (40, 0)-(120, 80) seen on a 2x2 grid; a red circle in the crop's
    # top-left cell, a blue square in its bottom-right cell.
    objects = [{"color": "red", "shape": "circle", "size": "small", "box": [40, 0, 80, 40]},
               {"color": "blue", "shape": "square", "size": "small", "box": [80, 40, 120, 80]}]
    words = ["a", "red", "circle", "and", "a", "blue", "square"]
    top_left, bottom_right, flat = [1.0, 0, 0, 0], [0, 0, 0, 1.0], [0.25] * 4
    alphas = torch.tensor([flat, top_left, top_left, flat, flat, top_left, bottom_right])
    result = AttentionResult(Image.new("RGB", (160, 80)), " ".join(words),
                             Decoded([], words, alphas=alphas, betas=torch.ones(7)), 2,
                             (40.0, 0.0, 120.0, 80.0))
    g = gallery._grounding_of(result, objects)
    assert [(w["word"], w["hit"]) for w in g["words"]] == [("red", True), ("circle", True), ("blue", False),
                                                           ("square", True)]
    assert g["n_words"] == 4 and g["hit_rate"] == pytest.approx(0.75)
    assert g["words"][0]["mass"] > 0.5 and g["uniform_mass"] == pytest.approx(0.25)


def test_index_html_escapes_text(tmp_path):
    entry = gallery.GalleryEntry(name="x", source="x.png", caption="a <script>alert(1)</script>",
                                 figures=["figures/x y.png"], references=["R & <b>"], cider=0.5)
    page = gallery.write_index_html(tmp_path, [entry]).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "R &amp; &lt;b&gt;" in page
    assert "figures/x%20y.png" in page
