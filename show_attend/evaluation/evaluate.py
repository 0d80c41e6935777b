"""Decode a split and score it: the one path shared by validation, tools/evaluate.py and the demo.

    checkpoint --restore--> decoder (or an ensemble) --decode_loader--> captions --score--> metrics
    --report.write_evaluation--> results.json, annotations.json, metrics.json, report.md, samples.txt
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..checkpoint import restore, restore_ensemble
from ..data.loaders import ImageDataset, collate_images
from ..data.prepare import prepare_dataset
from ..data.sources import normalize_split
from ..data.features import ensure_features
from ..data.transforms import ImageTransform
from ..metrics.coco_format import metrics_table_markdown
from ..metrics.scoring import score_captions
from ..model.decoding import Decoded, decode
from ..pretrained import is_model_folder, restore_pretrained
from ..utils.runtime import eval_mode
from .entities_grounding import EntitiesGrounding, attention_label
from .entities_report import entities_lines
from .grounding import dataset_grounding
from .report import write_evaluation


@torch.no_grad()
def decode_loader(decoder, loader: DataLoader, vocab, device: torch.device, *, encoder=None,
                  beam_size: int = 1, max_length: int = 20, length_penalty: float = 0.0,
                  suppress_unk: bool = True, progress: bool = False, desc: str = "decode",
                  on_batch: Optional[Callable[[torch.Tensor, list[str]], None]] = None) -> dict[str, Decoded]:
    """Decode every image of an ``ImageDataset`` loader -> {image_id: Decoded}.

    ``on_batch(annotations (B, L, D), image_ids)`` is called on each batch as well (teacher-forced
    scoring that reuses the batch's features or encoder pass)."""
    out: dict[str, Decoded] = {}
    with eval_mode(encoder):
        for images, image_ids in tqdm(loader, desc=desc, disable=not progress, leave=False):
            images = images.to(device)
            annotations = encoder(images) if encoder is not None else images.float()  # (B, L, D)
            for image_id, result in zip(image_ids, decode(decoder, annotations, vocab, beam_size=beam_size,
                                                          max_length=max_length, length_penalty=length_penalty,
                                                          suppress_unk=suppress_unk)):
                out[image_id] = result
            if on_batch is not None:
                on_batch(annotations, list(image_ids))
    return out


def captions_of(decoded: dict[str, Decoded]) -> dict[str, str]:
    return {image_id: " ".join(d.words) for image_id, d in decoded.items()}


def score(decoded: dict[str, Decoded], references: dict[str, list[str]],
          metrics: Optional[tuple[str, ...]] = None, tokenizer: str = "auto"):
    """pycocoevalcap scores of decoded captions against the raw references (a ``ScoreReport``)."""
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
    grounding: dict[str, Any] = field(default_factory=dict)  # the attention grounding score (synthetic shapes)
    entities_grounding: dict[str, Any] = field(default_factory=dict)  # against Flickr30k Entities boxes
    entities_note: str = ""  # why Entities grounding was skipped ('' when done or not asked for)

    @property
    def grounding_line(self) -> str:
        """One line for the console ('' when the data knows no boxes or the model has no attention)."""
        g = self.grounding
        real = "\n".join(filter(None, [self.entities_note, entities_lines(self.entities_grounding)]))
        if not g or g.get("hit_rate") is None:
            return real
        ratio = g["hit_rate"] / g["uniform_hit_rate"] if g.get("uniform_hit_rate") else float("nan")
        return (f"attention grounding: hit rate {g['hit_rate']:.3f} (peak cell inside the named object; uniform "
                f"attention {g['uniform_hit_rate']:.3f}, {ratio:.1f}x), mass in box {g['mass_in_box']:.3f} "
                f"(uniform {g['uniform_mass']:.3f}), {g['n_words']} words") + ("\n" + real if real else "")


def _versions() -> dict[str, str]:
    import platform

    import pycocoevalcap  # noqa: F401
    import torchvision

    from ..version import __version__

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
    averaged, see ``show_attend.model.ensemble``); they must share its vocabulary and encoder settings.
    The first checkpoint's config (data, encoder, decoding) drives the evaluation. ``out_dir`` may
    be a function of the resolved settings (beam, length penalty, ...), e.g. ``default_eval_dir``.
    ``checkpoint`` may also be an exported model folder or a shipped model's name (``overrides`` then
    say where the data lies: ``data.root=...``)."""
    split = normalize_split(split)
    load = restore_pretrained if is_model_folder(checkpoint) else restore
    model = load(checkpoint, device=device, overrides=overrides, encoder_weights=encoder_weights)
    cfg, dev = model.cfg, model.device
    decoder, run_name = model.decoder, cfg.name
    if ensemble:
        decoder, others = restore_ensemble(model, list(ensemble))
        run_name = "ensemble: " + " + ".join([cfg.name, *(m.cfg.name for m in others)])
    dataset = prepare_dataset(cfg.data, progress=progress)
    if not dataset.split(split):
        raise ValueError(f"split {split!r} has no images in {dataset.root}")
    encoder = store = transform = None
    if cfg.data.use_feature_cache and not model.fine_tuned_encoder:
        store = ensure_features(dataset, cfg.encoder, split, dev, cfg.data.num_workers, progress)
    else:
        encoder = model.build_encoder()
        transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode, cfg.encoder.name)
    images = ImageDataset(dataset, split, store, transform, max_images)
    loader = DataLoader(images, batch_size=batch_size, num_workers=cfg.data.num_workers,
                        collate_fn=collate_images)
    d = cfg.decode
    settings = {
        "checkpoint": str(checkpoint), "epoch": model.payload.get("epoch"), "split": split, "images": len(images),
        "beam_size": beam_size or d.beam_size, "max_length": max_length or d.max_length,
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
    grounder, entities_note = EntitiesGrounding.create(cfg, dataset, split, decoder, model.vocab)
    t0 = time.time()
    decoded = decode_loader(decoder, loader, model.vocab, dev, encoder=encoder, beam_size=settings["beam_size"],
                            max_length=settings["max_length"], length_penalty=settings["length_penalty"],
                            suppress_unk=d.suppress_unk, progress=progress, desc=f"decode {split}",
                            on_batch=grounder.teacher_force if grounder else None)
    entities = {}
    if grounder is not None:
        decoding = "greedy" if settings["beam_size"] == 1 else f"beam {settings['beam_size']}"
        entities = grounder.finish(decoded, attention_label(decoder, cfg), decoding)  # with its own "seconds"
    settings["decode_seconds"] = round(time.time() - t0 - (grounder.seconds if grounder else 0.0), 2)
    references = dataset.references(split)
    report = score(decoded, references, tokenizer=tokenizer)
    settings.update(tokenizer=report.tokenizer, skipped_metrics=dict(report.skipped), notes=list(report.notes),
                    versions=_versions(), scale="0-1 (as pycocoevalcap returns them)")
    table = metrics_table_markdown(report.scores, scale100=True)
    grounding = dataset_grounding(dataset, split, decoded, cfg)  # {} unless the data knows its boxes
    if callable(out_dir):
        out_dir = out_dir(settings)
    if out_dir is not None:
        results = captions_of(decoded)
        write_evaluation(Path(out_dir), results=results, references={k: references[k] for k in results},
                         image_names={im.image_id: im.file_name for im in dataset.split(split)},
                         scores=report.scores, settings=settings, table=table,
                         per_image_cider=report.per_image.get("CIDEr", {}),
                         grounding=grounding, entities_grounding=entities)
    return EvalReport(dict(report.scores), settings, table, Path(out_dir) if out_dir is not None else None,
                      decoded, grounding, entities, entities_note)
