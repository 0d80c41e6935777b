"""The synthetic "shapes" dataset: grounded captions of coloured shapes, generated offline.

Each image shows 1 to 3 non-overlapping shapes (circle, square, triangle; six colours; small or
large) on a gray background. Every image gets 5 distinct captions that are fully determined by
what is visible, e.g.

    a large red circle to the left of a small blue square          (the canonical phrasing)
    a small blue square to the right of a big red circle
    there is a big red circle next to a little blue square
    a red circle and a blue square
    two shapes , a big red circle and a little blue square

The first caption of every image always uses the canonical template (objects left to right, the
canonical size words "large"/"small"); the other four are drawn from a pool of paraphrases, built
so that the canonical caption is the most likely word-by-word path. A greedy decoder that has
learned the data therefore produces the canonical caption, which is one of the references: this
is what makes a high BLEU-4 reachable on a 7x7 VGG16 grid after a few minutes of CPU training.

Colour, shape and size words (size synonyms included) are grounded: each sentence stores, per
token of ``tokenize(raw)``, the index of the object the word names, or -1.

    root = generate_shapes_dataset("data/shapes")   # root/images/*.png, root/dataset_shapes.json
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from ..metrics.ptb_tokenizer import tokenize
from ..utils.files import atomic_write_text
from .scenes import SIZE_WORDS, Object, check_texture, render_scene

Piece = tuple[str, int]  # (text, object index or -1)

# Bump when the rendering or the caption templates change: stored datasets are then regenerated.
GENERATOR_VERSION = 2
JSON_NAME = "dataset_shapes.json"
IMAGE_DIR = "images"
CAPTIONS_PER_IMAGE = 5

# -------------------------------------------------------------------------------------- captions
def _center(obj: Object) -> tuple[float, float]:
    x0, y0, x1, y1 = obj["box"]
    return (x0 + x1) / 2, (y0 + y1) / 2


def position_phrase(obj: Object, image_size: int) -> str:
    """Where an object's centre lies on a 3x3 grid: "in the top left corner", "on the left", ..."""
    cx, cy = _center(obj)
    h = "left" if cx < image_size / 3 else "right" if cx > 2 * image_size / 3 else "center"
    v = "top" if cy < image_size / 3 else "bottom" if cy > 2 * image_size / 3 else "center"
    if h == "center" and v == "center":
        return "in the center"
    if v == "center":
        return f"on the {h}"
    if h == "center":
        return f"at the {v}"
    return f"in the {v} {h} corner"


def _size_word(obj: Object, style: str, rng: np.random.Generator) -> Optional[str]:
    words = SIZE_WORDS[obj["size"]]
    if style == "canon":
        return words[0]
    if style == "syn":
        return words[1]
    if style == "any":
        return words[int(rng.integers(len(words)))]
    if style == "none":
        return None
    raise ValueError(f"unknown size style {style!r}")


def _np(objects: list[Object], i: int, style: str, rng: np.random.Generator,
        article: str = "a") -> list[Piece]:
    """The noun phrase of object ``i``: "a large red circle" (style: canon/syn/any/none)."""
    obj = objects[i]
    pieces: list[Piece] = [(article, -1)] if article else []
    size = _size_word(obj, style, rng)
    if size is not None:
        pieces.append((size, i))
    pieces += [(obj["color"], i), (obj["shape"], i)]
    return pieces


def _w(text: str) -> Piece:
    return (text, -1)


def _templates(objects: list[Object], image_size: int, rng: np.random.Generator
               ) -> tuple[Callable[[], list[Piece]], list[Callable[[], list[Piece]]]]:
    """The canonical template and the pool of paraphrase templates for a scene."""
    order = sorted(range(len(objects)), key=lambda k: _center(objects[k])[0])  # left to right

    def np_(i: int, style: str, article: str = "a") -> list[Piece]:
        return _np(objects, i, style, rng, article)

    bg = [_w("on a gray background")]
    if len(objects) == 1:
        a = order[0]
        pos = [_w(position_phrase(objects[a], image_size))]
        canonical = lambda: np_(a, "canon")  # noqa: E731
        pool = [
            lambda: np_(a, "syn"),
            lambda: np_(a, "none") + pos,
            lambda: [_w("there is")] + np_(a, "any") + bg,
            lambda: [_w("the image shows")] + np_(a, "any"),
            lambda: np_(a, "any", article="one") + pos,
            lambda: [_w("a single")] + np_(a, "any", article="") + bg,
            lambda: np_(a, "canon") + pos,
            lambda: [_w("one shape ,")] + np_(a, "syn") + pos,
        ]
    elif len(objects) == 2:
        a, b = order
        canonical = lambda: np_(a, "canon") + [_w("to the left of")] + np_(b, "canon")  # noqa: E731
        pool = [
            lambda: np_(b, "any") + [_w("to the right of")] + np_(a, "any"),
            lambda: np_(a, "none") + [_w("and")] + np_(b, "none"),
            lambda: [_w("there is")] + np_(a, "any") + [_w("next to")] + np_(b, "any"),
            lambda: [_w("two shapes ,")] + np_(a, "syn") + [_w("and")] + np_(b, "syn"),
            lambda: [_w("the image shows")] + np_(a, "none") + [_w("and")] + np_(b, "none"),
            lambda: np_(a, "canon") + [_w("and")] + np_(b, "canon") + bg,
        ]
        boxes = [objects[k]["box"] for k in (a, b)]
        if boxes[0][3] <= boxes[1][1] or boxes[1][3] <= boxes[0][1]:  # vertically apart
            up, down = (a, b) if boxes[0][3] <= boxes[1][1] else (b, a)
            pool += [lambda: np_(up, "any") + [_w("above")] + np_(down, "any"),
                     lambda: np_(down, "any") + [_w("below")] + np_(up, "any")]
        else:
            pool += [lambda: np_(a, "syn") + [_w("on the left and")] + np_(b, "syn")
                     + [_w("on the right")],
                     lambda: np_(b, "none") + [_w("on the right and")] + np_(a, "none")
                     + [_w("on the left")]]
    else:
        a, b, c = order
        canonical = lambda: (np_(a, "canon") + [_w(",")] + np_(b, "canon") + [_w("and")]  # noqa: E731
                             + np_(c, "canon"))
        pool = [
            lambda: [_w("three shapes ,")] + np_(a, "none") + [_w(",")] + np_(b, "none")
            + [_w("and")] + np_(c, "none"),
            lambda: [_w("from right to left ,")] + np_(c, "none") + [_w(",")] + np_(b, "none")
            + [_w("and")] + np_(a, "none"),
            lambda: np_(a, "none") + [_w(",")] + np_(b, "none") + [_w("and")] + np_(c, "none"),
            lambda: np_(a, "syn") + [_w(",")] + np_(b, "syn") + [_w("and")] + np_(c, "syn"),
            lambda: [_w("the image shows")] + np_(a, "none") + [_w(",")] + np_(b, "none")
            + [_w("and")] + np_(c, "none"),
            lambda: [_w("there is")] + np_(a, "none") + [_w(",")] + np_(b, "none")
            + [_w("and")] + np_(c, "none"),
            lambda: np_(b, "any") + [_w("between")] + np_(a, "any") + [_w("and")] + np_(c, "any"),
        ]
    return canonical, pool


def _realise(pieces: list[Piece], cache: dict[str, list[str]]) -> tuple[str, list[str], list[int]]:
    """Join pieces into a raw caption; groundings aligned with ``tokenize(raw)``.

    ``cache`` memoises the tokens of each piece (the pieces come from a small set of strings).
    """
    raw = " ".join(text for text, _ in pieces)
    tokens: list[str] = []
    groundings: list[int] = []
    for text, index in pieces:
        toks = cache.get(text)
        if toks is None:
            toks = cache[text] = tokenize(text)
        tokens += toks
        groundings += [index] * len(toks)
    if tokens != tokenize(raw):  # pieces must tokenise independently
        raise AssertionError(f"grounding misaligned for {raw!r}: {tokens} != {tokenize(raw)}")
    return raw, tokens, groundings


def canonical_caption(objects: list[Object], image_size: int) -> str:
    """The canonical caption of a scene (the first reference of every image), e.g.
    ``"a large red circle , a small blue square and a large green triangle"`` (left to right)."""
    canonical, _ = _templates(objects, image_size, np.random.default_rng(0))
    return _realise(canonical(), {})[0]


def describe(objects: list[Object], image_size: int, rng: np.random.Generator,
             n: int = CAPTIONS_PER_IMAGE) -> list[tuple[str, list[int]]]:
    """``n`` distinct captions ``(raw, groundings)`` of a scene; the first is the canonical one.

    ``groundings[k]`` is the index into ``objects`` of the object named by token ``k`` of
    ``tokenize(raw)`` (colour, shape and size words), or -1.
    """
    return [(raw, groundings) for raw, _, groundings in _describe(objects, image_size, rng, n, {})]


def _describe(objects: list[Object], image_size: int, rng: np.random.Generator, n: int,
              cache: dict[str, list[str]]) -> list[tuple[str, list[str], list[int]]]:
    """:func:`describe` with the tokens: ``(raw, tokenize(raw), groundings)`` per caption."""
    if not 1 <= len(objects) <= 3:
        raise ValueError(f"describe handles 1 to 3 objects, got {len(objects)}")
    canonical, pool = _templates(objects, image_size, rng)
    captions = [_realise(canonical(), cache)]
    seen = {tuple(captions[0][1])}
    for _ in range(4):  # a few passes over the pool: synonym choices may repeat a caption
        for k in rng.permutation(len(pool)):
            if len(captions) == n:
                return captions
            caption = _realise(pool[int(k)](), cache)
            if tuple(caption[1]) not in seen:
                seen.add(tuple(caption[1]))
                captions.append(caption)
    if len(captions) < n:
        raise ValueError(f"could not make {n} distinct captions for {len(objects)} object(s)")
    return captions


# ------------------------------------------------------------------------------------ generation
def _params(num_train: int, num_val: int, num_test: int, image_size: int, seed: int, texture: str) -> dict:
    params = {"generator_version": GENERATOR_VERSION, "num_train": num_train, "num_val": num_val,
              "num_test": num_test, "image_size": image_size, "seed": seed,
              "captions_per_image": CAPTIONS_PER_IMAGE}
    if texture != "flat":  # datasets generated before the option existed stay up to date
        params["texture"] = texture
    return params


def _up_to_date(root: Path, params: dict) -> bool:
    """True when ``root`` holds a complete dataset generated with ``params``."""
    path = root / JSON_NAME
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("params") != params:
        return False
    images = data.get("images", [])
    return len(images) == params["num_train"] + params["num_val"] + params["num_test"] and all(
        (root / IMAGE_DIR / img["filename"]).is_file() for img in images)


def generate_shapes_dataset(root: Union[str, Path], num_train: int = 1500, num_val: int = 150,
                            num_test: int = 150, image_size: int = 112, seed: int = 0,
                            progress: bool = True, texture: str = "flat") -> Path:
    """Write ``root/images/<imgid:06d>.png`` and ``root/dataset_shapes.json``; return ``root``.

    Deterministic in ``seed`` (same arguments: byte-identical images and JSON). Skips the work when
    ``root`` already holds a complete dataset made with the same parameters (stored under the
    JSON's top-level ``"params"``); otherwise regenerates. The JSON is written atomically.
    """
    for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    root = Path(root)
    check_texture(texture)
    params = _params(num_train, num_val, num_test, image_size, seed, texture)
    if _up_to_date(root, params):
        return root
    image_dir = root / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    # An interrupted regeneration must not leave an old JSON describing half-overwritten images.
    (root / JSON_NAME).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    splits = ["train"] * num_train + ["val"] * num_val + ["test"] * num_test
    iterator: Any = range(len(splits))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="generating shapes", unit="img")
    images = []
    cache: dict[str, list[str]] = {}
    for imgid in iterator:
        image, objects = render_scene(rng, image_size, texture=texture)
        filename = f"{imgid:06d}.png"
        image.save(image_dir / filename, format="PNG", compress_level=1)
        sentences = []
        for k, (raw, tokens, groundings) in enumerate(
                _describe(objects, image_size, rng, CAPTIONS_PER_IMAGE, cache)):
            sentences.append({"raw": raw, "tokens": tokens, "imgid": imgid,
                              "sentid": imgid * CAPTIONS_PER_IMAGE + k, "groundings": groundings})
        images.append({"filename": filename, "imgid": imgid, "split": splits[imgid],
                       "sentences": sentences, "sentids": [s["sentid"] for s in sentences],
                       "width": image_size, "height": image_size, "objects": objects})
    keep = {img["filename"] for img in images}
    for stale in image_dir.glob("[0-9]*.png"):  # left over from a larger earlier generation
        if stale.name not in keep and stale.stem.isdigit():
            stale.unlink()
    data = {"dataset": "shapes", "params": params, "images": images}
    atomic_write_text(root / JSON_NAME, json.dumps(data, separators=(",", ":")))
    return root
