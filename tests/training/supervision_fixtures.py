"""The synthetic shapes' own boxes (each image knows where its shapes are and which caption words name
them) as a Flickr30k Entities folder and as targets, for the supervision tests; imported by the modules
that use them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from show_attend.data.box_targets import BoxTargets


def box_coverage(box, image_size: int, g: int) -> np.ndarray:
    """(g*g,): the share of each cell of a g x g grid tiling the image that the box covers."""
    x0, y0, x1, y1 = (float(v) for v in box)
    edges = np.arange(g + 1) * image_size / g
    cover_x = np.clip(np.minimum(edges[1:], x1) - np.maximum(edges[:-1], x0), 0, None) / (image_size / g)
    cover_y = np.clip(np.minimum(edges[1:], y1) - np.maximum(edges[:-1], y0), 0, None) / (image_size / g)
    return (cover_y[:, None] * cover_x[None, :]).reshape(-1)


def shapes_targets(dataset, split: str, encoder_cfg, entities_dir=None, progress: bool = False) -> BoxTargets:
    """The targets of a shapes split made directly from its boxes: each object word (size, colour,
    shape) -> its object's box (what its Entities folder, below, must give too)."""
    g = encoder_cfg.grid_size
    image_ids, masks, links = [], [], []
    for image_row, im in enumerate(dataset.split(split)):
        image_ids.append(im.image_id)
        rows = {}
        for k, objects in enumerate(im.extra["objects"]):
            cover = box_coverage(objects["box"], im.extra["width"], g)
            rows[k] = len(masks)
            masks.append(cover / cover.sum())
        for caption, groundings in enumerate(im.extra["groundings"]):
            links += [(image_row, caption, pos, rows[obj]) for pos, obj in enumerate(groundings) if obj >= 0]
    return BoxTargets(image_ids, np.asarray(masks, np.float32), np.asarray(links, np.int64).reshape(-1, 4),
                      {"images": len(image_ids), "supervised words": len(links)})


def write_shapes_entities(dataset, folder: Path) -> Path:
    """The shapes' boxes as a Flickr30k Entities folder in the official format: per image
    ``Sentences/<id>.txt`` (each run of words naming one shape marked ``[/EN#<chain>/other ...]``) and
    ``Annotations/<id>.xml`` (the image size, each shape's box in 1-based inclusive pixels)."""
    for sub in ("Sentences", "Annotations"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for im in dataset.images:
        lines = []
        for tokens, groundings in zip(im.tokens, im.extra["groundings"]):
            words, k = [], 0
            while k < len(tokens):
                obj, j = groundings[k], k
                while j < len(tokens) and groundings[j] == obj:
                    j += 1
                text = " ".join(tokens[k:j])
                words.append(f"[/EN#{obj + 1}/other {text}]" if obj >= 0 else text)
                k = j
            lines.append(" ".join(words))
        stem = Path(im.file_name).stem
        (folder / "Sentences" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        objects = "".join(
            f"<object><name>{k + 1}</name><bndbox><xmin>{b[0] + 1}</xmin><ymin>{b[1] + 1}</ymin>"
            f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for k, b in enumerate(o["box"] for o in im.extra["objects"]))
        (folder / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{im.extra['width']}</width>"
            f"<height>{im.extra['height']}</height><depth>3</depth></size>{objects}</annotation>")
    return folder


def shapes_entities(cfg, folder: Path) -> Path:
    """Generate (or reuse) the config's shapes dataset and write its Entities folder; returns the folder."""
    from show_attend.data.prepare import prepare_dataset

    return write_shapes_entities(prepare_dataset(cfg.data, progress=False), folder)


def mass_in_boxes(decoder, dataset, split: str, grid_size: int, store, vocab) -> float:
    """Teacher-forced on the split's captions: the mean attention mass inside the named object's box
    (sum over the cells of alpha x the share of the cell the box covers), over the object words."""
    import torch

    total, words = 0.0, 0
    decoder.eval()
    with torch.no_grad():
        for im in dataset.split(split):
            features = store.get(im.image_id).float().unsqueeze(0)  # (1, L, D)
            for caption, toks in enumerate(im.tokens):
                alphas = decoder(features, torch.tensor([vocab.encode(toks, 50)])).alphas[0].numpy()  # (T, L)
                for pos, obj in enumerate(im.extra["groundings"][caption]):
                    if obj >= 0:
                        cover = box_coverage(im.extra["objects"][obj]["box"], im.extra["width"], grid_size)
                        total += float((alphas[pos] * cover).sum())
                        words += 1
    return total / max(words, 1)
