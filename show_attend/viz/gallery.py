"""Attention galleries: Figure-3-style heatmaps for image files or a dataset split, plus a static page.

    captioner = Captioner.from_checkpoint("runs/shapes_demo/best.pt")
    render_images(captioner, ["a.jpg", "b.png"], "out/", gif=True)   # out/a.png, out/a.gif, ...
    render_split_gallery("runs/shapes_demo/best.pt", "test", 20)     # runs/shapes_demo/gallery_test/index.html

The attention drawn is always the attention of the caption shown: every image is captioned here
(``Captioner.caption_with_attention``: the checkpoint's encoder on the image file, then greedy or
beam decoding), and its heatmaps are placed on the region of the photo the encoder saw
(``ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode).crop_box(w, h)``), so they align
on non-square photos too.

Per-image CIDEr in a split gallery is CIDEr-D with the IDF of the *whole split's* references (as in
a full evaluation of that split), not of the gallery subset: CIDEr-D's IDF depends on the references
only, so the other images of the split enter the scorer with a placeholder caption whose scores are
discarded (see :func:`per_image_cider`). The numbers are those of a full evaluation with the same
checkpoint and beam size, up to the small differences between decoding from image files and from
the feature cache.

The page (``index.html``) is one self-contained file: inline CSS, no scripts, relative links to the
figures next to it, so the folder can be opened from disk, zipped or served as is.
"""
from __future__ import annotations

import html
import inspect
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union
from urllib.parse import quote

import numpy as np

from ..utils.files import atomic_write_json, atomic_write_text
from .attention import FIGURE_SUFFIXES, plot_attention, save_attention_figure, save_attention_gif
from .boxes import best_worst_html, open_entities, result_word_boxes, word_records

PathLike = Union[str, Path]
CIDER_PLACEHOLDER = "<none>"  # caption given to the split's images outside the gallery (scores dropped)


@dataclass
class GalleryEntry:
    """One image of a gallery: what the page shows."""

    name: str  # file stem of its figures
    source: str  # the image file
    caption: str
    figures: list[str]  # file names, relative to the gallery folder
    image_id: Optional[str] = None
    references: list[str] = field(default_factory=list)
    cider: Optional[float] = None
    grounding: Optional[dict[str, Any]] = None
    entities: Optional[list[dict[str, Any]]] = None  # words drawn with their human boxes (Flickr30k Entities)


# --------------------------------------------------------------------------- file names
def _formats(fmt: Union[str, Sequence[str]]) -> list[str]:
    fmts = [fmt] if isinstance(fmt, str) else list(fmt)
    out = []
    for f in fmts:
        suffix = "." + str(f).lower().lstrip(".")
        if suffix not in FIGURE_SUFFIXES:
            raise ValueError(f"unsupported figure format {f!r}; use one of "
                             f"{tuple(s[1:] for s in FIGURE_SUFFIXES)}")
        if suffix not in out:
            out.append(suffix)
    if not out:
        raise ValueError("no figure format given")
    return out


def safe_stem(name: str) -> str:
    """A file stem made of ``[A-Za-z0-9._-]`` from an image file name (``"a b.jpg"`` -> ``"a_b"``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).stem).strip("._")
    return stem or "image"


def _unique(stem: str, used: set[str]) -> str:
    name, i = stem, 1
    while name.lower() in used:
        i += 1
        name = f"{stem}_{i}"
    used.add(name.lower())
    return name


# --------------------------------------------------------------------------- rendering
def _gif_kwargs(plot_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The plot options that :func:`save_attention_gif` understands too (cmap, upsample, ...)."""
    accepted = inspect.signature(save_attention_gif).parameters
    return {k: v for k, v in plot_kwargs.items() if k in accepted}


def _render_result(result: Any, stem: str, out_dir: Path, suffixes: Sequence[str], gif: bool,
                   plot_kwargs: dict[str, Any], word_boxes: Optional[Sequence[Any]] = None) -> list[Path]:
    """Write the figure(s) (and GIF) of one ``AttentionResult``; returns the paths written.
    ``word_boxes``: per word its human boxes and mass (``viz.boxes``), drawn on the figure."""
    d = result.decoded
    words = list(d.words)
    g = int(result.grid_size)
    # An empty caption (possible with a barely trained model) is drawn as the photo alone.
    alphas = d.alphas if words and d.alphas is not None else np.zeros((0, g, g))
    betas = d.betas if words else None
    geometry = getattr(result, "geometry", None)  # where the encoder's cells lie
    fig = plot_attention(result.image, words, alphas, betas, result.crop_box, geometry=geometry,
                         word_boxes=word_boxes if words else None, **plot_kwargs)
    paths = [save_attention_figure(fig, out_dir / f"{stem}{suffix}") for suffix in suffixes]
    fig.clear()
    if gif and words:
        paths.append(save_attention_gif(result.image, words, alphas, betas, out_dir / f"{stem}.gif",
                                        result.crop_box, geometry=geometry, **_gif_kwargs(plot_kwargs)))
    return paths


def _caption_in_chunks(captioner: Any, images: Sequence[PathLike], beam_size: Optional[int],
                       chunk: int = 16):
    """``caption_with_attention`` a few images at a time (keeps the photos in memory bounded)."""
    for i in range(0, len(images), chunk):
        yield from captioner.caption_with_attention(list(images[i: i + chunk]), beam_size=beam_size)


def render_images(captioner: Any, image_paths: Sequence[PathLike], out_dir: PathLike, *,
                  beam_size: Optional[int] = None, fmt: Union[str, Sequence[str]] = "png",
                  gif: bool = False, entities: Any = None, **plot_kwargs: Any) -> list[Path]:
    """Caption image files and save their attention figures (Figure 3 of the paper).

    Args:
        captioner: a :class:`show_attend.api.Captioner`.
        image_paths: image files of any size, aspect and mode (RGB, grayscale, RGBA, ...).
        out_dir: created if needed. Each image gets ``<stem>.<fmt>`` (its file stem, made
            file-system safe, ``_2``, ``_3``... appended when two images share a stem).
        beam_size: defaults to the checkpoint's ``decode.beam_size``; 1 is greedy.
        fmt: ``"png"``, ``"pdf"``, ``"svg"`` or a sequence of them (one file each).
        gif: also write ``<stem>.gif``, one frame per word.
        entities: a Flickr30k Entities folder or reader: images it annotates (by Flickr id) get the
            human boxes of the words that name an annotated phrase drawn over their heatmaps.
        **plot_kwargs: options of :func:`show_attend.visualize.plot_attention` (``cmap``,
            ``upsample``, ``normalize``, ``ncols``, ``dpi``, ...); those the GIF writer knows are
            passed to it as well.

    Returns:
        The files written, image by image (figures in ``fmt`` order, then the GIF). Also writes
        ``out_dir/captions.json``: {image path as given: caption}.
    """
    suffixes = _formats(fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = list(image_paths)
    used: set[str] = set()
    stems = [_unique(safe_stem(Path(p).name), used) for p in images]
    written: list[Path] = []
    captions: dict[str, str] = {}
    entities = open_entities(entities)[0]
    for path, stem, result in zip(images, stems, _caption_in_chunks(captioner, images, beam_size)):
        boxes = result_word_boxes(result, entities, Path(path).name, captioner.cfg)
        written += _render_result(result, stem, out, suffixes, gif, plot_kwargs, boxes)
        captions[str(path)] = result.caption
    atomic_write_json(out / "captions.json", captions)
    return written


# --------------------------------------------------------------------------- scores
def per_image_cider(captions: dict[str, str], references: dict[str, list[str]],
                    tokenizer: str = "auto") -> dict[str, float]:
    """CIDEr-D of each caption in ``captions`` with the IDF of *all* of ``references``.

    ``references`` is the whole split ({image_id: raw references}); ``captions`` may cover only a
    few of its images. CIDEr-D's document frequencies and its ``log(#images)`` term come from the
    references alone, so scoring the other images with a placeholder caption gives each gallery
    image exactly the score it gets in a full-split evaluation. Only the gallery's scores are
    returned (the corpus mean, which the placeholders would distort, is discarded).
    """
    from ..metrics import score_captions

    missing = set(captions) - set(references)
    if missing:
        raise KeyError(f"no references for {sorted(missing)[:5]}")
    results = {k: captions.get(k, CIDER_PLACEHOLDER) for k in references}
    report = score_captions(results, references, tokenizer=tokenizer, metrics=("CIDEr",))
    scores = report.per_image.get("CIDEr", {})
    return {k: float(scores[k]) for k in captions}


def _grounding_of(result: Any, objects: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Per-word grounding of one synthetic image's caption (boxes moved into the encoder's crop)."""
    from ..evaluation.grounding import grounding_score, score_sample

    words = list(result.decoded.words)
    if not words or result.decoded.alphas is None:
        return None
    x0, y0, x1, y1 = result.crop_box
    moved = [dict(obj, box=[obj["box"][0] - x0, obj["box"][1] - y0, obj["box"][2] - x0,
                            obj["box"][3] - y0]) for obj in objects]
    size = (int(round(x1 - x0)), int(round(y1 - y0)))
    alphas = result.decoded.alphas.detach().cpu().numpy()
    geometry = getattr(result, "geometry", None)
    summary = grounding_score([(words, alphas, moved)], grid_size=result.grid_size, image_size=size, geometry=geometry)
    scores, unmatched = score_sample(words, alphas, moved, result.grid_size, size, geometry=geometry)
    summary["words"] = [{"index": s.index, "word": s.word, "hit": s.hit, "mass": round(s.mass, 4),
                         "uniform_mass": round(s.uniform_mass, 4)} for s in scores]
    summary["unmatched_words"] = [words[i] for i in unmatched]
    summary.pop("per_kind", None)
    return summary


# --------------------------------------------------------------------------- the split gallery
def select_images(images: Sequence[Any], num: int, seed: int = 0) -> list[Any]:
    """``num`` images drawn at random (``seed``), kept in dataset order; ``num <= 0``: all."""
    if num <= 0 or num >= len(images):
        return list(images)
    keep = sorted(random.Random(seed).sample(range(len(images)), num))
    return [images[i] for i in keep]


def render_split_gallery(checkpoint: PathLike, split: str = "test", num: int = 20,
                         out_dir: Optional[PathLike] = None, *, beam_size: Optional[int] = None,
                         encoder_weights: Optional[str] = None, seed: int = 0,
                         device: Optional[str] = None, fmt: Union[str, Sequence[str]] = "png",
                         gif: bool = False, tokenizer: str = "auto", captioner: Any = None, entities: Any = None,
                         **plot_kwargs: Any) -> Path:
    """Caption ``num`` images of a split with a checkpoint and write an HTML attention gallery.

    Args:
        checkpoint: a ``.pt`` file or a run folder (its ``best.pt``).
        split: ``train`` / ``val`` / ``test`` of the dataset recorded in the checkpoint's config
            (prepared, or generated for synthetic data, if needed).
        num: images to show, drawn at random with ``seed`` (0 or less: the whole split).
        out_dir: default ``<checkpoint folder>/gallery_<split>``.
        beam_size: defaults to the checkpoint's ``decode.beam_size``.
        encoder_weights: overrides the VGG16 weights recorded in the checkpoint (a local file).
        device: ``cpu``, ``cuda``, ...; default: the checkpoint's ``device`` setting.
        fmt, gif, **plot_kwargs: as in :func:`render_images`; the page shows the first format.
        tokenizer: for CIDEr (``auto``: Java PTBTokenizer when available, as in evaluation).
        captioner: that checkpoint's ``Captioner``, when the caller already built it.
        entities: a Flickr30k Entities folder or reader (default: the config's ``data.entities_dir``):
            human boxes over the words' heatmaps, and the best and worst grounded words on the page.

    Writes ``<out_dir>/figures/<stem>.png`` per image, ``gallery.json`` (everything on the page) and
    ``index.html``. Returns the path of ``index.html``.
    """
    from ..api import Captioner
    from ..data.prepare import prepare_dataset
    from ..data.sources import normalize_split

    split = normalize_split(split)
    captioner = captioner or Captioner.from_checkpoint(checkpoint, device=device, encoder_weights=encoder_weights)
    cfg = captioner.cfg
    dataset = prepare_dataset(cfg.data, progress=False)
    images = dataset.split(split)
    if not images:
        raise ValueError(f"split {split!r} has no images in {dataset.root}")
    chosen = select_images(images, num, seed)
    ckpt_path = Path(checkpoint)
    out = Path(out_dir) if out_dir is not None else \
        (ckpt_path if ckpt_path.is_dir() else ckpt_path.parent) / f"gallery_{split}"
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    suffixes = _formats(fmt)
    beam = beam_size or cfg.decode.beam_size
    entities = open_entities(entities if entities is not None else cfg.data.entities_dir)[0]

    used: set[str] = set()
    entries: list[GalleryEntry] = []
    paths = [dataset.image_dir / im.file_name for im in chosen]
    for im, path, result in zip(chosen, paths, _caption_in_chunks(captioner, paths, beam)):
        stem = _unique(safe_stem(im.file_name), used)
        boxes = result_word_boxes(result, entities, im.file_name, cfg)
        files = _render_result(result, stem, fig_dir, suffixes, gif, plot_kwargs, boxes)
        entry = GalleryEntry(name=stem, source=str(path), caption=result.caption,
                             figures=[f"figures/{p.name}" for p in files], image_id=im.image_id,
                             references=list(im.captions), entities=word_records(result.decoded.words, boxes))
        if im.extra.get("objects"):
            entry.grounding = _grounding_of(result, im.extra["objects"])
        entries.append(entry)

    cider = per_image_cider({e.image_id: e.caption for e in entries}, dataset.references(split),
                            tokenizer=tokenizer)
    for e in entries:
        e.cider = cider[e.image_id]
    info = {"checkpoint": str(checkpoint), "split": split, "images_in_split": len(images),
            "images_shown": len(entries), "seed": seed, "beam_size": beam,
            "encoder_weights": cfg.encoder.weights, "grid_size": cfg.encoder.grid_size,
            "image_size": cfg.encoder.image_size, "resize_mode": cfg.encoder.resize_mode,
            "dataset": str(dataset.root),
            "cider_note": f"CIDEr-D per image, IDF from the references of all {len(images)} "
                          f"images of the {split} split (as in a full evaluation)",
            "mean_cider_shown": sum(e.cider for e in entries) / len(entries)}
    atomic_write_json(out / "gallery.json", {"info": info, "entries": [e.__dict__ for e in entries]})
    return write_index_html(out, entries, info)


# --------------------------------------------------------------------------- the page
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } .meta { color: #555; font-size: 0.9em; }
.entry { border-top: 1px solid #ddd; padding: 1em 0; }
.entry img { max-width: 100%; height: auto; border: 1px solid #eee; }
.caption { font-size: 1.15em; font-weight: 600; margin: 0.4em 0; }
.score { display: inline-block; background: #eef; border-radius: 4px; padding: 0 0.4em; margin-right: 0.5em; }
.refs { margin: 0.3em 0; color: #444; } .refs li { margin: 0.1em 0; }
.hit { color: #070; } .miss { color: #a00; } .files a { margin-right: 0.6em; font-size: 0.85em; }
"""


def _link(rel: str) -> str:
    return html.escape(quote(rel), quote=True)


def _grounding_html(g: dict[str, Any]) -> str:
    if not g.get("n_words"):
        extra = f"; {len(g.get('unmatched_words', []))} object word(s) name nothing in the image" \
            if g.get("unmatched_words") else ""
        return f"<div class='grounding'>Grounding: no colour/shape word to score{html.escape(extra)}.</div>"
    words = " ".join(
        f"<span class='{'hit' if w['hit'] else 'miss'}'>{html.escape(w['word'])} "
        f"{'&#10003;' if w['hit'] else '&#10007;'} ({w['mass']:.2f})</span>" for w in g["words"])
    text = (f"Grounding: attention peak inside the named object for {round(g['hit_rate'] * g['n_words'])}"
            f"/{g['n_words']} colour/shape words; mass in box {g['mass_in_box']:.2f} "
            f"(uniform attention: {g['uniform_mass']:.2f}). Per word: {words}")
    if g.get("unmatched_words"):
        text += html.escape(f"; naming nothing in the image: {', '.join(g['unmatched_words'])}")
    return f"<div class='grounding'>{text}</div>"


def write_index_html(out_dir: PathLike, entries: Sequence[GalleryEntry],
                     info: Optional[dict[str, Any]] = None, title: str = "Attention gallery") -> Path:
    """A self-contained ``index.html`` (inline CSS, no scripts, relative links) in ``out_dir``."""
    out = Path(out_dir)
    info = dict(info or {})
    head = [f"<h1>{html.escape(title)}</h1>"]
    if info:
        meta = (f"Checkpoint <code>{html.escape(str(info.get('checkpoint', '')))}</code>; "
                f"{info.get('images_shown', len(entries))} of {info.get('images_in_split', '?')} "
                f"images of the <b>{html.escape(str(info.get('split', '')))}</b> split "
                f"(seed {info.get('seed')}); beam size {info.get('beam_size')}; encoder weights "
                f"{html.escape(str(info.get('encoder_weights')))}, grid {info.get('grid_size')}x"
                f"{info.get('grid_size')}, input {info.get('image_size')} px "
                f"({html.escape(str(info.get('resize_mode')))}).")
        head.append(f"<p class='meta'>{meta}</p>")
        if info.get("cider_note"):
            head.append(f"<p class='meta'>{html.escape(info['cider_note'])}; mean over the images shown: "
                        f"{info.get('mean_cider_shown', 0.0):.3f}.</p>")
    head.append("<p class='meta'>Each panel shows the attention &alpha; of the step that emitted the "
                "word (upsampled from the encoder's grid onto the region of the photo the encoder "
                "saw), and &beta;, the gate on the attended context at that step.</p>")
    body = []
    for e in entries:
        figure = next((f for f in e.figures if not f.endswith(".gif")), None)
        parts = [f"<div class='entry' id='{html.escape(e.name, quote=True)}'>",
                 f"<h2 class='meta'>{html.escape(e.image_id or e.name)}"
                 f" <span class='meta'>({html.escape(Path(e.source).name)})</span></h2>"]
        if figure is not None:
            parts.append(f"<a href='{_link(figure)}'><img src='{_link(figure)}' "
                         f"alt='attention of: {html.escape(e.caption, quote=True)}' loading='lazy'></a>")
        parts.append(f"<p class='caption'>{html.escape(e.caption) or '<i>(empty caption)</i>'}</p>")
        if e.cider is not None:
            parts.append(f"<span class='score'>CIDEr-D {e.cider:.3f}</span>")
        if e.references:
            parts.append("<ol class='refs'>" + "".join(f"<li>{html.escape(r)}</li>" for r in e.references)
                         + "</ol>")
        if e.grounding is not None:
            parts.append(_grounding_html(e.grounding))
        others = [f for f in e.figures if f != figure]
        if others:
            parts.append("<div class='files'>" + "".join(
                f"<a href='{_link(f)}'>{html.escape(Path(f).name)}</a>" for f in others) + "</div>")
        parts.append("</div>")
        body.append("\n".join(parts))
    page = ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(head) + "\n" + best_worst_html(entries) + "\n" + "\n".join(body) + "\n</body>\n</html>\n")
    path = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path
