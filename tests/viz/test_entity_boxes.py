"""Human boxes (Flickr30k Entities) over a word's heatmap, with its mass; the gallery's best and worst words."""
from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from show_attend.data.boxes import FrameGrid
from show_attend.data.entities import parse_annotation, parse_sentences
from show_attend.data.prepare import prepare_dataset
from show_attend.data.transforms import ImageTransform
from show_attend.evaluation.entities_grounding import word_boxes
from show_attend.viz.attention import plot_attention, save_attention_figure
from show_attend.viz.gallery import render_split_gallery

from conftest import write_entities_from_shapes

XML = """<annotation><size><width>400</width><height>200</height><depth>3</depth></size>
<object><name>1</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>200</xmax><ymax>200</ymax></bndbox></object>
<object><name>2</name><nobndbox>1</nobndbox><scene>0</scene></object></annotation>"""
SENTENCES = "[/EN#1/animals A brown dog] runs on [/EN#2/scene the grass] .\n"


def test_a_word_is_drawn_with_its_human_box_and_mass(tmp_path):
    image = parse_annotation(XML, "1")
    image = type(image)(image.image_id, image.width, image.height, image.boxes, image.scene, image.no_box,
                        parse_sentences(SENTENCES))
    photo = Image.new("RGB", (200, 100), (90, 120, 60))  # a half-size copy of the annotated photo
    words = ["a", "dog", "runs", "on", "grass"]
    alphas = np.full((5, 49), 1 / 49)
    alphas[1] = 0.0
    alphas[1, [0, 7, 14, 21, 28, 35, 42]] = 1 / 7  # "dog" looks at the left column only
    found = word_boxes(words, alphas, image, photo.size, ImageTransform(112, "squash"), FrameGrid.of(112, grid_size=7))
    # "a dog" matches "A brown dog" on its last word only; "the grass" has no box
    assert [f is not None for f in found] == [False, True, False, False, False]
    assert found[1].boxes == ((0.0, 0.0, 100.0, 100.0),)  # in the file's pixels
    assert found[1].mass == 1.0 and found[1].hit and found[1].uniform == 0.5
    assert word_boxes(["brown", "dog"], alphas[:2], image, photo.size, ImageTransform(112, "squash"),
                      FrameGrid.of(112, grid_size=7))[0].mass == pytest.approx(0.5)  # uniform: the box's share
    fig = plot_attention(photo, words, alphas, word_boxes=found, max_side=None)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert panels[2].get_title() == "dog\n1.00 in box" and panels[3].get_title() == "runs"
    drawn = [p for p in panels[2].patches if isinstance(p, Rectangle)]
    assert drawn and drawn[0].get_width() == 100.0 and drawn[0].get_height() == 100.0
    assert not [p for p in panels[3].patches if isinstance(p, Rectangle)]
    assert save_attention_figure(fig, tmp_path / "dog.png").stat().st_size > 0


def test_split_gallery_draws_boxes_and_lists_best_and_worst_words(trained_run, tmp_path):
    run_dir, cfg = trained_run
    dataset = prepare_dataset(cfg.data, progress=False)
    write_entities_from_shapes(dataset, "val", tmp_path / "entities")
    index = render_split_gallery(run_dir / "best.pt", split="val", num=6, out_dir=tmp_path / "gallery",
                                 tokenizer="python", entities=tmp_path / "entities")
    entries = json.loads((tmp_path / "gallery" / "gallery.json").read_text())["entries"]
    # every image is annotated: each caption with words has its (possibly empty) list of grounded words
    assert [e["entities"] is not None for e in entries] == [bool(e["caption"]) for e in entries], entries
    words = [w for e in entries for w in (e["entities"] or [])]
    page = index.read_text()
    if words:  # the tiny model named an annotated shape
        assert "Best grounded" in page and "Worst grounded" in page
        assert all(0.0 <= w["mass"] <= 1.0 and 0.0 < w["uniform"] < 1.0 for w in words)
    else:
        assert "Best grounded" not in page
