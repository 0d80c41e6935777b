"""Decode a split and score it: the one path shared by validation, tools/evaluate.py and the demo."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .decoding import Decoded, decode


@torch.no_grad()
def decode_loader(decoder, loader: DataLoader, vocab, device: torch.device, *, encoder=None,
                  beam_size: int = 1, max_length: int = 20, length_penalty: float = 0.0,
                  suppress_unk: bool = True, progress: bool = False, desc: str = "decode"
                  ) -> dict[str, Decoded]:
    """Decode every image of an ``ImageDataset`` loader -> {image_id: Decoded}."""
    out: dict[str, Decoded] = {}
    if encoder is not None:
        encoder.eval()
    for images, image_ids in tqdm(loader, desc=desc, disable=not progress, leave=False):
        images = images.to(device)
        annotations = encoder(images) if encoder is not None else images.float()  # (B, L, D)
        for image_id, result in zip(image_ids, decode(decoder, annotations, vocab, beam_size=beam_size,
                                                      max_length=max_length, length_penalty=length_penalty,
                                                      suppress_unk=suppress_unk)):
            out[image_id] = result
    return out


def captions_of(decoded: dict[str, Decoded]) -> dict[str, str]:
    return {image_id: " ".join(d.words) for image_id, d in decoded.items()}


def score(decoded: dict[str, Decoded], references: dict[str, list[str]],
          metrics: Optional[tuple[str, ...]] = None, tokenizer: str = "auto"):
    """pycocoevalcap scores of decoded captions against the raw references (a ``ScoreReport``)."""
    from .metrics import score_captions

    results = captions_of(decoded)
    refs = {k: references[k] for k in results}
    kwargs = {"tokenizer": tokenizer}
    if metrics is not None:
        kwargs["metrics"] = metrics
    return score_captions(results, refs, **kwargs)


@dataclass
class EvalReport:
    scores: dict[str, float]
    settings: dict[str, Any]
    markdown_table: str
    out_dir: Optional[Path]
    decoded: dict[str, Decoded]


def _versions() -> dict[str, str]:
    import platform

    import pycocoevalcap  # noqa: F401
    import torchvision

    from . import __version__

    def dist_version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {"show_attend": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pycocoevalcap": dist_version("pycocoevalcap"), "python": platform.python_version()}


def default_eval_dir(run_dir: str | Path, settings: dict[str, Any]) -> Path:
    """``<run_dir>/eval_<split>_b<k>[_lp<penalty>][_ensemble]`` for an evaluation's resolved settings:
    one folder per decoding, so that another beam or length penalty never overwrites a report."""
    penalty = settings["length_penalty"]
    return Path(run_dir) / (f"eval_{settings['split']}_b{settings['beam_size']}"
                            + (f"_lp{penalty:g}" if penalty else "")
                            + ("_ensemble" if settings.get("ensemble") else ""))


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test",
                        out_dir: Optional[str | Path | Callable[[dict[str, Any]], Path]] = None, *,
                        beam_size: Optional[int] = None, max_length: Optional[int] = None,
                        length_penalty: Optional[float] = None, encoder_weights: Optional[str] = None,
                        device: Optional[str] = None, batch_size: int = 32, max_images: int = 0,
                        tokenizer: str = "auto", progress: bool = True,
                        overrides: Optional[list[str]] = None,
                        ensemble: Sequence[str | Path] = ()) -> EvalReport:
    """Decode ``split`` with a checkpoint, score it, and (with ``out_dir``) write the COCO-format
    ``results.json``, ``annotations.json``, ``metrics.json``, ``report.md`` and ``samples.txt``.

    ``ensemble``: further checkpoints decoded together with the first (their word distributions
    averaged, see ``show_attend.ensemble``); they must share its vocabulary and encoder settings.
    The first checkpoint's config (data, encoder, decoding) drives the evaluation. ``out_dir`` may
    be a function of the resolved settings (beam, length penalty, ...), e.g. ``default_eval_dir``."""
    from .checkpoint import load_checkpoint
    from .config import config_from_dict
    from .coco_format import metrics_table_markdown, write_annotations, write_results
    from .data.loaders import ImageDataset, collate_images
    from .data.prepare import prepare_dataset
    from .data.sources import normalize_split
    from .decoder import build_decoder
    from .encoder import build_encoder
    from .features import ensure_features
    from .transforms import ImageTransform
    from .utils import resolve_device
    from .vocab import Vocabulary

    split = normalize_split(split)
    ckpt = load_checkpoint(checkpoint)
    cfg = config_from_dict(ckpt["config"], overrides)
    if encoder_weights is not None:
        cfg.encoder.weights = encoder_weights
    dev = resolve_device(device or cfg.device)
    vocab = Vocabulary.from_dict(ckpt["vocab"])
    decoder = build_decoder(cfg.model, len(vocab), cfg.encoder.grid_size).to(dev)
    decoder.load_state_dict(ckpt["decoder"])
    run_name = cfg.name
    if ensemble:
        decoder, names = _ensemble(decoder, ckpt, cfg, [Path(p) for p in ensemble], dev)
        run_name = "ensemble: " + " + ".join([cfg.name, *names])
    dataset = prepare_dataset(cfg.data, progress=progress)
    if not dataset.split(split):
        raise ValueError(f"split {split!r} has no images in {dataset.root}")
    encoder = None
    store = transform = None
    if cfg.data.use_feature_cache and not ckpt.get("encoder_block5"):
        store = ensure_features(dataset, cfg.encoder, split, dev, cfg.data.num_workers, progress)
    else:
        encoder = build_encoder(cfg.encoder).to(dev)
        if ckpt.get("encoder_block5"):
            encoder.load_state_dict(ckpt["encoder_block5"], strict=False)
        transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode)
    images = ImageDataset(dataset, split, store, transform, max_images)
    loader = DataLoader(images, batch_size=batch_size, num_workers=cfg.data.num_workers,
                        collate_fn=collate_images)
    d = cfg.decode
    beam = beam_size or d.beam_size
    settings = {
        "checkpoint": str(checkpoint), "epoch": ckpt.get("epoch"), "split": split, "images": len(images),
        "beam_size": beam, "max_length": max_length or d.max_length,
        "length_penalty": d.length_penalty if length_penalty is None else length_penalty,
        "suppress_unk": d.suppress_unk, "encoder": cfg.encoder.name, "encoder_weights": cfg.encoder.weights,
        "grid_size": cfg.encoder.grid_size, "image_size": cfg.encoder.image_size,
        "resize_mode": cfg.encoder.resize_mode, "pool": cfg.encoder.pool, "dataset": str(dataset.root),
        "device": str(dev),
        "run": run_name, "objective": cfg.train.objective, "alpha_c": cfg.train.alpha_c,
        "model": dataclasses.asdict(cfg.model),
    }
    if ensemble:
        settings["ensemble"] = [str(checkpoint), *map(str, ensemble)]
    t0 = time.time()
    decoded = decode_loader(decoder, loader, vocab, dev, encoder=encoder, beam_size=beam,
                            max_length=settings["max_length"], length_penalty=settings["length_penalty"],
                            suppress_unk=d.suppress_unk, progress=progress, desc=f"decode {split}")
    settings["decode_seconds"] = round(time.time() - t0, 2)
    references = dataset.references(split)
    report = score(decoded, references, tokenizer=tokenizer)
    settings.update(tokenizer=report.tokenizer, skipped_metrics=dict(report.skipped), notes=list(report.notes),
                    versions=_versions(), scale="0-1 (as pycocoevalcap returns them)")
    table = metrics_table_markdown(report.scores, scale100=True)
    out = None
    if callable(out_dir):
        out_dir = out_dir(settings)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        results = captions_of(decoded)
        refs = {k: references[k] for k in results}
        names = {im.image_id: im.file_name for im in dataset.split(split)}
        write_results(out / "results.json", results)
        write_annotations(out / "annotations.json", refs, image_names=names)
        extra = _grounding(dataset, split, decoded, cfg)
        metrics = {"metrics": dict(report.scores), "settings": settings}
        if extra:
            metrics["grounding"] = extra
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        per_image = report.per_image.get("CIDEr", {})
        (out / "report.md").write_text(_report_markdown(table, settings, results, refs, per_image, extra))
        (out / "samples.txt").write_text("".join(
            f"{image_id}\t{names.get(image_id, '')}\t{cap}\n" for image_id, cap in results.items()))
    return EvalReport(dict(report.scores), settings, table, out, decoded)


def _ensemble(first, first_ckpt: dict[str, Any], cfg, paths: list[Path], device: torch.device):
    """The first decoder plus the decoders of ``paths``, checked to be compatible with it
    -> (``DecoderEnsemble``, the members' run names after the first)."""
    from .checkpoint import load_checkpoint
    from .config import config_from_dict
    from .decoder import build_decoder
    from .ensemble import DecoderEnsemble
    from .results_table import weights_label

    if first_ckpt.get("encoder_block5"):
        raise ValueError("ensembles of checkpoints with a fine-tuned encoder block are not supported")
    keys = ("name", "weights", "grid_size", "image_size", "resize_mode", "pool")
    members, names = [first], []
    for path in paths:
        other = load_checkpoint(path)
        other_cfg = config_from_dict(other["config"])
        if other["vocab"] != first_ckpt["vocab"]:
            raise ValueError(f"ensemble member {path}: its vocabulary differs from the first checkpoint's "
                             "(train the members on the same data with the same min_word_count)")
        if other.get("encoder_block5"):
            raise ValueError(f"ensemble member {path} fine-tuned its encoder block: not supported in an ensemble")
        for key in keys:
            mine, theirs = getattr(cfg.encoder, key), getattr(other_cfg.encoder, key)
            if key == "weights":
                mine, theirs = weights_label(mine), weights_label(theirs)
            if mine != theirs:
                raise ValueError(f"ensemble member {path}: encoder.{key} is {theirs!r}, the first checkpoint's "
                                 f"{mine!r}; members must read the same annotations")
        member = build_decoder(other_cfg.model, first.vocab_size, other_cfg.encoder.grid_size)
        member.load_state_dict(other["decoder"])
        members.append(member.to(device))
        names.append(other_cfg.name)
    return DecoderEnsemble(members), names


def _grounding(dataset, split: str, decoded: dict[str, Decoded], cfg) -> dict[str, Any]:
    """The attention grounding score on datasets that know their objects' boxes (synthetic)."""
    images = {im.image_id: im for im in dataset.split(split)}
    if not any("objects" in im.extra for im in images.values()):
        return {}
    from .grounding import grounding_score

    samples = [(d.words, d.alphas.numpy(), images[i].extra["objects"]) for i, d in decoded.items()]
    size = next(iter(images.values())).extra.get("width", cfg.data.synthetic.image_size)
    return grounding_score(samples, grid_size=cfg.encoder.grid_size, image_size=size)


def _offset_sentence(offset: Optional[Sequence[float]]) -> str:
    if offset is None:
        return ""
    return (f" On average the peak cell's centre lies {offset[0]:+.2f} cells right and {offset[1]:+.2f} cells "
            "down of the named box's centre.")


def _report_markdown(table: str, settings: dict[str, Any], results: dict[str, str],
                     refs: dict[str, list[str]], per_image: dict[str, float], grounding: dict[str, Any],
                     n: int = 5) -> str:
    lines = [f"# Evaluation: {settings['split']} split, beam {settings['beam_size']}", "",
             f"Checkpoint `{settings['checkpoint']}` (epoch {settings['epoch']}); {settings['images']} images; "
             f"encoder {settings['encoder']} ({settings['encoder_weights']}), grid "
             f"{settings['grid_size']}x{settings['grid_size']}, input {settings['image_size']} px "
             f"({settings['resize_mode']}); tokenizer: {settings['tokenizer']}.", "", table, ""]
    if settings.get("skipped_metrics"):
        lines += ["Skipped: " + "; ".join(f"{k} ({v})" for k, v in settings["skipped_metrics"].items()), ""]
    if grounding:
        def fmt(v: Optional[float]) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        lines += ["## Attention grounding (does the model look where it speaks?)", "",
                  "For each generated colour or shape word that names an object of the image: is the "
                  "attention peak of that step inside the object's box, and how much attention mass "
                  "falls inside it. Uniform attention would score the box's share of the image.", "",
                  "| | model | uniform attention (box's share of the image) | chance (peak cell drawn uniformly) |",
                  "|---|---|---|---|",
                  f"| peak inside the box (hit rate) | {fmt(grounding['hit_rate'])} | "
                  f"{fmt(grounding['uniform_mass'])} | {fmt(grounding['uniform_hit_rate'])} |",
                  f"| attention mass inside the box | {fmt(grounding['mass_in_box'])} | "
                  f"{fmt(grounding['uniform_mass'])} | |",
                  f"| peak cell on or next to the box (overlaps it) | {fmt(grounding.get('near_rate'))} | | "
                  f"{fmt(grounding.get('uniform_near_rate'))} |",
                  "", f"{grounding['n_words']} grounded colour/shape words; "
                  f"{grounding.get('n_unmatched', 0)} generated object words name no object in the image."
                  + _offset_sentence(grounding.get("mean_peak_offset")), ""]
    if per_image:
        ranked = sorted(per_image, key=lambda k: per_image[k])
        for title, ids in (("Best", ranked[::-1][:n]), ("Worst", ranked[:n])):
            lines += [f"## {title} {len(ids)} images by CIDEr", ""]
            for image_id in ids:
                lines.append(f"- **{image_id}** (CIDEr {per_image[image_id]:.3f}): *{results[image_id]}*")
                lines += [f"  - {r}" for r in refs[image_id]]
            lines.append("")
    return "\n".join(lines)
