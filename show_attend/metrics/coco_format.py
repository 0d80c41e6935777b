"""COCO caption-format files: writing and reading results and references, scoring files.

* results file (what the COCO evaluation server takes): ``[{"image_id": ..., "caption": ...}]``;
* annotations file (COCO ``captions_*.json`` layout)::

    {"info": {...}, "licenses": [], "type": "captions",
     "images": [{"id": ..., "file_name": ...}],
     "annotations": [{"image_id": ..., "id": ..., "caption": ...}]}

Image ids keep their type: COCO uses ints, our Flickr8k ids are strings such as
``"1000268201_693b08cb0e"``; both survive a write/read round trip unchanged.
:func:`score_files` reads the two files back and scores them with
:func:`show_attend.metrics.scoring.score_captions`, so reported metrics can be re-checked from the files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable, Mapping, Optional, Sequence

from ..utils.files import PathLike, atomic_write_json
from ..utils.markdown import markdown_table
from .names import LABELS, METRIC_NAMES
from .scoring import ScoreReport, score_captions


def _check_id(image_id: Hashable) -> Hashable:
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise TypeError(f"image ids must be int or str (JSON), got {image_id!r}")
    return image_id


def write_results(path: PathLike, results: Mapping[Hashable, str]) -> None:
    """Write ``{image_id: caption}`` as a COCO results file ``[{"image_id", "caption"}]``."""
    data = [{"image_id": _check_id(k), "caption": str(v)} for k, v in results.items()]
    atomic_write_json(path, data, indent=1)


def read_results(path: PathLike) -> dict:
    """Read a COCO results file into ``{image_id: caption}`` (duplicate ids are an error)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: a results file is a JSON list of {{image_id, caption}}")
    out: dict = {}
    for item in data:
        k = _check_id(item["image_id"])
        if k in out:
            raise ValueError(f"{path}: image_id {k!r} appears more than once")
        out[k] = item["caption"]
    return out


def write_annotations(path: PathLike, references: Mapping[Hashable, Sequence[str]],
                      image_names: Optional[Mapping[Hashable, str]] = None,
                      info: Optional[dict] = None) -> None:
    """Write ``{image_id: [reference, ...]}`` as a COCO caption annotation file.

    ``image_names`` maps ids to file names (default: the id itself as a string). Annotation ids
    are consecutive integers from 1 in the order given.
    """
    images = []
    annotations = []
    ann_id = 1
    for k, refs in references.items():
        _check_id(k)
        if isinstance(refs, str):
            raise TypeError(f"references of {k!r} must be a list of str, not a str")
        name = image_names[k] if image_names is not None and k in image_names else str(k)
        images.append({"id": k, "file_name": name})
        for caption in refs:
            annotations.append({"image_id": k, "id": ann_id, "caption": str(caption)})
            ann_id += 1
    data = {"info": info or {"description": "reference captions written by show_attend"},
            "licenses": [], "type": "captions", "images": images, "annotations": annotations}
    atomic_write_json(path, data, indent=1)


def read_annotations(path: PathLike) -> dict:
    """Read a COCO caption annotation file into ``{image_id: [reference, ...]}``.

    Images are listed in the order of ``images`` (then of any annotation ids not listed there);
    captions in annotation order.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict = {}
    for img in data.get("images", []):
        out.setdefault(_check_id(img["id"]), [])
    for ann in data["annotations"]:
        out.setdefault(_check_id(ann["image_id"]), []).append(ann["caption"])
    return out


def read_image_names(path: PathLike) -> dict:
    """``{image_id: file_name}`` from a COCO caption annotation file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {img["id"]: img.get("file_name", str(img["id"])) for img in data.get("images", [])}


def score_files(results_json: PathLike, annotations_json: PathLike, **kwargs) -> ScoreReport:
    """Score a COCO results file against a COCO annotation file (``kwargs`` go to
    :func:`show_attend.metrics.scoring.score_captions`)."""
    return score_captions(read_results(results_json), read_annotations(annotations_json),
                          **kwargs)


def metrics_table_markdown(scores: Mapping[str, float], scale100: bool = True,
                           title: Optional[str] = None) -> str:
    """A two-row markdown table of metric scores, labelled with its scale.

    ``scores`` uses pycocoevalcap names on the 0-1 scale (as in :class:`ScoreReport.scores`).
    With ``scale100`` the values are multiplied by 100 and the header says "x100"; otherwise
    the header says "0-1 scale". Metrics are listed in the canonical order, then any others.
    """
    names = [m for m in METRIC_NAMES if m in scores] + sorted(m for m in scores
                                                              if m not in METRIC_NAMES)
    if not names:
        return "(no scores)"
    factor = 100.0 if scale100 else 1.0
    digits = 2 if scale100 else 4
    scale = "scores x100" if scale100 else "scores on the 0-1 scale"
    table = markdown_table([LABELS.get(m, m) for m in names],
                           [[f"{float(scores[m]) * factor:.{digits}f}" for m in names]], ["right"] * len(names))
    caption = f"{title} ({scale})" if title else f"Caption metrics ({scale})"
    return "\n".join([caption, "", table])
