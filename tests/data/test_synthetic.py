"""The synthetic shapes dataset: rendering, grounded captions, the JSON file, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from show_attend.data.scenes import COLOR_RGB, COLORS, SHAPES, SIZES, object_word_kind, render_scene, size_of_word
from show_attend.data.synthetic import JSON_NAME, canonical_caption, describe, generate_shapes_dataset, position_phrase
from show_attend.metrics.ptb_tokenizer import tokenize

SIZE = 112


def _generate(root: Path, **kw) -> dict:
    args = dict(num_train=8, num_val=2, num_test=2, image_size=SIZE, seed=3, progress=False)
    args.update(kw)
    generate_shapes_dataset(root, **args)
    return json.loads((root / JSON_NAME).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("shapes")
    return root, _generate(root)


def _nearest_color(rgb: np.ndarray) -> str:
    return min(COLORS, key=lambda c: float(np.sum((np.asarray(COLOR_RGB[c], float) - rgb) ** 2)))


def test_object_word_kind_and_size_words():
    assert object_word_kind("red") == "color"
    assert object_word_kind("triangle") == "shape"
    assert [object_word_kind(w) for w in ("large", "big", "small", "little")] == ["size"] * 4
    assert object_word_kind("left") is None and object_word_kind("a") is None
    assert size_of_word("big") == "large" and size_of_word("little") == "small"
    assert size_of_word("red") is None


def test_json_structure_and_splits(dataset):
    root, data = dataset
    assert data["dataset"] == "shapes"
    assert data["params"]["seed"] == 3 and data["params"]["image_size"] == SIZE
    images = data["images"]
    assert [im["split"] for im in images] == ["train"] * 8 + ["val"] * 2 + ["test"] * 2
    assert [im["imgid"] for im in images] == list(range(12))
    sentids = []
    for im in images:
        assert im["filename"] == f"{im['imgid']:06d}.png"
        with Image.open(root / "images" / im["filename"]) as img:
            assert img.mode == "RGB" and img.size == (SIZE, SIZE)
        assert (im["width"], im["height"]) == (SIZE, SIZE)
        assert 1 <= len(im["objects"]) <= 3
        for obj in im["objects"]:
            assert obj["color"] in COLORS and obj["shape"] in SHAPES and obj["size"] in SIZES
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        for s in im["sentences"]:
            assert s["imgid"] == im["imgid"]
            assert s["tokens"] == tokenize(s["raw"])
            assert 1 <= len(s["tokens"]) <= 16
        sentids += im["sentids"]
    assert len(sentids) == len(set(sentids)) == 60


def test_five_distinct_captions_first_is_canonical(dataset):
    _, data = dataset
    for im in data["images"]:
        token_lists = [tuple(s["tokens"]) for s in im["sentences"]]
        assert len(token_lists) == 5 and len(set(token_lists)) == 5
        assert im["sentences"][0]["raw"] == canonical_caption(im["objects"], SIZE)


def test_groundings_align_and_name_the_right_object(dataset):
    _, data = dataset
    for im in data["images"]:
        objects = im["objects"]
        for s in im["sentences"]:
            assert len(s["groundings"]) == len(s["tokens"])
            for word, g in zip(s["tokens"], s["groundings"]):
                kind = object_word_kind(word)
                if kind is None:
                    assert g == -1, (s["raw"], word)
                    continue
                assert 0 <= g < len(objects), (s["raw"], word)
                value = size_of_word(word) if kind == "size" else word
                assert objects[g][kind] == value, (s["raw"], word, objects[g])


def test_boxes_inside_apart_and_coloured(dataset):
    root, data = dataset
    for im in data["images"]:
        pixels = np.asarray(Image.open(root / "images" / im["filename"]), dtype=float)
        boxes = [obj["box"] for obj in im["objects"]]
        for obj, (x0, y0, x1, y1) in zip(im["objects"], boxes):
            assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
            assert x1 - x0 == y1 - y0
            side = (x1 - x0) / SIZE
            assert (0.17 <= side <= 0.25) if obj["size"] == "small" else (0.34 <= side <= 0.46)
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            centre = pixels[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3).mean(axis=0)
            assert _nearest_color(centre) == obj["color"], (obj, centre)
            # the box is tight: pixels just outside it are background (gray), inside differ
            if x1 < SIZE and not any(b is not obj["box"] and b[0] <= x1 < b[2] for b in boxes):
                outside = pixels[y0:y1, x1]
                assert np.ptp(outside, axis=1).max() < 8  # gray: R = G = B (up to rounding)
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_deterministic_and_seed_dependent(tmp_path):
    a = _generate(tmp_path / "a", num_train=4, num_val=1, num_test=1)
    b = _generate(tmp_path / "b", num_train=4, num_val=1, num_test=1)
    c = _generate(tmp_path / "c", num_train=4, num_val=1, num_test=1, seed=4)
    assert (tmp_path / "a" / JSON_NAME).read_bytes() == (tmp_path / "b" / JSON_NAME).read_bytes()
    for im in a["images"]:
        name = im["filename"]
        assert (tmp_path / "a" / "images" / name).read_bytes() == \
            (tmp_path / "b" / "images" / name).read_bytes()
    assert a["images"] == b["images"] and a["images"] != c["images"]


def test_regeneration_skipped_when_params_match(tmp_path):
    root = tmp_path / "shapes"
    _generate(root, num_train=3, num_val=1, num_test=1)
    json_path = root / JSON_NAME
    marker = json_path.read_text(encoding="utf-8").replace('"dataset":"shapes"',
                                                           '"dataset":"shapes","marker":1')
    json_path.write_text(marker, encoding="utf-8")
    assert "marker" in _generate(root, num_train=3, num_val=1, num_test=1)  # untouched
    # different parameters: regenerated, and stale images of the larger run removed
    data = _generate(root, num_train=2, num_val=1, num_test=0)
    assert "marker" not in data and len(data["images"]) == 3
    assert sorted(p.name for p in (root / "images").iterdir()) == \
        [f"{i:06d}.png" for i in range(3)]
    # a missing image also triggers regeneration
    (root / "images" / "000001.png").unlink()
    _generate(root, num_train=2, num_val=1, num_test=0)
    assert (root / "images" / "000001.png").is_file()
    assert not list(root.glob(".*tmp*"))  # the atomic write left no temporary file


def test_describe_templates_are_truthful():
    rng = np.random.default_rng(0)
    left = {"color": "red", "shape": "circle", "size": "large", "box": [5, 40, 50, 85]}
    right = {"color": "blue", "shape": "square", "size": "small", "box": [80, 10, 104, 34]}
    assert canonical_caption([right, left], SIZE) == \
        "a large red circle to the left of a small blue square"
    caps = describe([right, left], SIZE, rng)
    assert len(caps) == 5 and caps[0][0] == canonical_caption([right, left], SIZE)
    for raw, groundings in caps:
        if "above" in raw:  # the square (higher) is above the circle
            assert raw.index("square") < raw.index("above")
        if "to the right of" in raw:
            assert raw.index("square") < raw.index("right")
    assert position_phrase(right, SIZE) == "in the top right corner"
    assert position_phrase({"box": [40, 40, 70, 70]}, SIZE) == "in the center"
    assert position_phrase({"box": [2, 40, 30, 70]}, SIZE) == "on the left"
    with pytest.raises(ValueError):
        describe([], SIZE, rng)


def test_render_scene_counts_and_validation():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3):
        image, objects = render_scene(rng, SIZE, num_objects=n)
        assert image.size == (SIZE, SIZE) and len(objects) == n
        xs = sorted((o["box"][0] + o["box"][2]) / 2 for o in objects)
        assert all(b - a >= 0.15 * SIZE - 1 for a, b in zip(xs, xs[1:]))  # left-to-right is clear
    with pytest.raises(ValueError):
        render_scene(rng, SIZE, num_objects=4)


def test_grating_texture_keeps_layout_and_colour_and_varies_inside():
    flat_img, flat_objs = render_scene(np.random.default_rng(5), SIZE, num_objects=2)
    tex_img, tex_objs = render_scene(np.random.default_rng(5), SIZE, num_objects=2, texture="grating")
    assert tex_objs == flat_objs  # the same scene: objects are drawn before any texture
    flat, tex = np.asarray(flat_img, float), np.asarray(tex_img, float)
    for obj in tex_objs:
        x0, y0, x1, y1 = obj["box"]
        cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, max(2, (x1 - x0) // 6)
        inner_flat = flat[cy - r:cy + r, cx - r:cx + r].reshape(-1, 3)
        inner = tex[cy - r:cy + r, cx - r:cx + r].reshape(-1, 3)  # well inside every shape kind
        assert inner_flat.std(axis=0).max() < 1.0  # flat: one colour
        assert inner.std(axis=0).max() > 10.0  # grating: brightness varies inside the shape
        assert _nearest_color(np.median(inner, axis=0)) == obj["color"]  # the colour word still holds
    outside = np.ones(flat.shape[:2], bool)
    for obj in tex_objs:
        x0, y0, x1, y1 = obj["box"]
        outside[y0:y1, x0:x1] = False
    assert np.array_equal(flat[outside], tex[outside])  # the background is untouched
    with pytest.raises(ValueError, match="texture"):
        render_scene(np.random.default_rng(5), SIZE, texture="plaid")


def test_texture_is_part_of_the_dataset_params(tmp_path):
    flat = _generate(tmp_path / "flat")
    assert "texture" not in flat["params"]  # datasets made before the option stay valid
    tex = _generate(tmp_path / "tex", texture="grating")
    assert tex["params"]["texture"] == "grating"
    assert [o["objects"] for o in tex["images"]] != [] and len(tex["images"]) == len(flat["images"])
