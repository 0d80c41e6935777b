"""The subcommands of ``show-attend`` (and of the thin scripts in ``tools/``): each parses its
arguments and calls the package; ``common.command`` turns errors into one line and an exit code."""
from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Optional, Sequence

from .common import (DEFAULT_CONFIG, UsageError, command, load_captioner, load_cli_config, model_args, parser_for,
                     readable_images, report_failed, report_result, setup_logging)

Argv = Optional[Sequence[str]]


# ---------------------------------------------------------------------------------------- train
@command
def train_main(argv: Argv = None, default_config: Optional[str] = DEFAULT_CONFIG, prog: Optional[str] = None) -> int:
    from ..evaluation.evaluate import evaluate_checkpoint
    from ..training.trainer import train

    parser = parser_for("Train a soft-attention captioner (teacher forcing).", True, default_config, prog)
    parser.add_argument("--resume", type=Path, default=None,
                        help="a run folder (or its last.pt) to continue; its config.yaml is used, "
                             "--set still applies")
    parser.add_argument("--no-eval", action="store_true", help="skip the final test-split evaluation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    setup_logging()
    if args.resume is not None:
        run = args.resume if args.resume.is_dir() else args.resume.parent
        args.config = run / "config.yaml"
    cfg = load_cli_config(args)
    t0 = time.time()
    run_dir = train(cfg, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 reports and evaluates
        return 0
    print(f"\ntraining finished in {(time.time() - t0) / 60:.1f} min; run folder: {run_dir}")
    print(f"  checkpoints : {run_dir / 'best.pt'} (best val {cfg.train.val_metric}), {run_dir / 'last.pt'}")
    print(f"  TensorBoard : tensorboard --logdir {run_dir / 'tb'}")
    if not args.no_eval:
        out = run_dir / "eval_test"
        report = evaluate_checkpoint(run_dir / "best.pt", split="test", out_dir=out,
                                     beam_size=cfg.decode.beam_size, progress=not args.no_progress)
        print(report.markdown_table)
        if report.grounding_line:
            print(report.grounding_line)
        print(f"  test report : {out / 'report.md'} (metrics.json, results.json, samples.txt)")
    return 0


# ---------------------------------------------------------------------------------------- prepare
@command
def prepare_main(argv: Argv = None, default_config: Optional[str] = DEFAULT_CONFIG, prog: Optional[str] = None) -> int:
    from ..data.prepare import format_summary, prepare_dataset

    parser = parser_for("Prepare a dataset: splits, tokenised captions, vocabulary.", True, default_config, prog)
    parser.add_argument("--force", action="store_true", help="re-read the raw files even if prepared")
    args = parser.parse_args(argv)
    setup_logging()
    dataset = prepare_dataset(load_cli_config(args).data, force=args.force)
    print(format_summary(dataset.summary, dataset.problems(), skipped_json=dataset.root / "skipped.json"))
    print(f"prepared dataset written to {dataset.root}")
    return 0


# ---------------------------------------------------------------------------------------- features
@command
def extract_main(argv: Argv = None, default_config: Optional[str] = DEFAULT_CONFIG, prog: Optional[str] = None) -> int:
    from ..data.features import ensure_features
    from ..data.prepare import prepare_dataset
    import torch

    from ..model.encoder import build_encoder
    from ..utils.distributed import from_environment
    from ..utils.runtime import resolve_device

    parser = parser_for("Run the encoder once per split into the feature cache (under torchrun, the images "
                        "are shared out across the processes).", True, default_config, prog)
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_cli_config(args)
    device = resolve_device(cfg.device)
    dist = from_environment(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    dataset = dist.main_first(lambda: prepare_dataset(cfg.data, progress=dist.main))
    encoder = build_encoder(cfg.encoder)
    try:
        for split in args.splits:
            if not dataset.split(split):
                if dist.main:
                    print(f"{split}: no images (skipped)")
                continue
            t0 = time.time()
            store = ensure_features(dataset, cfg.encoder, split, device, cfg.data.num_workers, progress=dist.main,
                                    encoder=encoder, dist=dist)
            size = store.path.stat().st_size
            if dist.main:
                print(f"{split}: {len(store)} images -> {store.path} ({size / 2**20:.1f} MiB, "
                      f"{size / max(len(store), 1) / 1000:.1f} KB/image, {time.time() - t0:.0f}s)")
    finally:
        dist.close()
    return 0


# ---------------------------------------------------------------------------------------- evaluate
@command
def evaluate_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    from ..evaluation.evaluate import default_eval_dir, evaluate_checkpoint

    parser = parser_for("Decode a split with a checkpoint (or a model folder) and score it with pycocoevalcap "
                        "(BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE when it can run).", prog=prog)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", type=Path, help="a .pt file or a run folder")
    which.add_argument("--model", default=None,
                       help="instead: an exported model folder or a shipped model's name (say where the data lies "
                            "with --set data.root=...; reports go to evals/<name>/ unless --out)")
    parser.add_argument("--ensemble", nargs="+", type=Path, default=[], metavar="CKPT",
                        help="further checkpoints (same vocabulary and encoder) decoded together with "
                             "--checkpoint, their word probabilities averaged at every step")
    parser.add_argument("--split", default="test", help="train, val (dev) or test")
    parser.add_argument("--beam-size", type=int, default=None, help="default: the config's decode.beam_size")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--length-penalty", type=float, default=None)
    parser.add_argument("--max-images", type=int, default=0, help="decode only the first N images")
    parser.add_argument("--tokenizer", choices=["auto", "ptb", "python"], default="auto",
                        help="auto: pycocoevalcap's PTBTokenizer (Java) when Java runs, else a "
                             "pure-Python copy of it")
    parser.add_argument("--encoder-weights", default=None, help="override the encoder weights path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the checkpoint's config, e.g. --set data.root=/path/to/Flickr8k")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <run>/eval_<split>_b<k>[_lp<penalty>][_ensemble])")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (as in train.py)")
    args = parser.parse_args(argv)
    setup_logging()
    if args.model is not None and args.ensemble:
        parser.error("--ensemble goes with --checkpoint; export an ensemble into one model folder instead")
    ckpt = args.checkpoint if args.model is None else args.model
    run_dir = (ckpt if ckpt.is_dir() else ckpt.parent) if args.model is None else Path("evals") / Path(ckpt).name
    # the default folder is named after the resolved decoding and the split as typed (dev stays dev)
    out = args.out or (lambda settings: default_eval_dir(run_dir, {**settings, "split": args.split}))
    report = evaluate_checkpoint(ckpt, split=args.split, out_dir=out, beam_size=args.beam_size,
                                 max_length=args.max_length, length_penalty=args.length_penalty,
                                 encoder_weights=args.encoder_weights, device=args.device,
                                 max_images=args.max_images, tokenizer=args.tokenizer,
                                 overrides=args.overrides, ensemble=args.ensemble,
                                 progress=not args.no_progress)
    s = report.settings
    print(f"{s['split']} split, {s['images']} images, beam {s['beam_size']}, tokenizer {s['tokenizer']}")
    print(report.markdown_table)
    if report.grounding_line:
        print(report.grounding_line)
    for metric, why in s.get("skipped_metrics", {}).items():
        print(f"skipped {metric}: {why}")
    print(f"wrote {report.out_dir}/: results.json, annotations.json, metrics.json, report.md, samples.txt")
    return 0


# ---------------------------------------------------------------------------------------- caption
@command
def caption_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    parser = parser_for("Caption image files (JPEG, PNG, any size or mode), with the shipped Flickr8k model "
                        "unless --model or --checkpoint names another.", prog=prog)
    parser.add_argument("images", nargs="+", type=Path)
    model_args(parser)
    parser.add_argument("--beam-size", type=int, default=None, help="default: the config's decode.beam_size")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--attention", action="store_true",
                        help="with --json: each word's attention grid (g x g) and beta")
    args = parser.parse_args(argv)
    from ..serve.results import caption_json  # the JSON shape POST /api/caption answers with too

    captioner = load_captioner(args, parser)
    paths, images, failed = readable_images(args.images, min_side=captioner.cfg.encoder.image_size)
    results = captioner.decode(images, args.beam_size, args.max_length) if images else []
    for path, d in zip(paths, results):
        if args.json:
            print(json.dumps({"image": str(path), **caption_json(d, captioner.cfg.encoder.grid_size,
                                                                 captioner.attention_note, args.attention)}))
        else:
            print(f"{path}\t{' '.join(d.words)}")
    return report_failed(failed, len(paths))


# ---------------------------------------------------------------------------------------- export
@command
def export_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    from ..pretrained import export_checkpoints

    parser = parser_for("Turn a checkpoint (or several, as an ensemble) into a portable model folder: decoder "
                        "weights in safetensors, vocabulary and settings as JSON, a model card.", prog=prog)
    parser.add_argument("checkpoints", nargs="+", type=Path, help=".pt files or run folders (several: an ensemble)")
    parser.add_argument("--out", required=True, type=Path, help="the model folder to write")
    parser.add_argument("--with-encoder-weights", action="store_true",
                        help="copy the VGG16 weights into the folder too (about 59 MB), so it needs nothing else")
    parser.add_argument("--encoder-weights", default=None, help="the VGG16 weights file, if it moved")
    parser.add_argument("--float16", action="store_true",
                        help="store the weights in float16 (half the size; computation stays float32)")
    parser.add_argument("--card-notes", type=Path, default=None, metavar="FILE",
                        help="a markdown file added to the model card (measurements, attribution)")
    args = parser.parse_args(argv)
    import torch

    folder = export_checkpoints(args.checkpoints, args.out, with_encoder_weights=args.with_encoder_weights,
                                encoder_weights=args.encoder_weights, dtype=torch.float16 if args.float16 else None,
                                card_notes=args.card_notes.read_text(encoding="utf-8") if args.card_notes else "")
    print(f"wrote {folder}/: model.json, vocab.json, decoder-*.safetensors, README.md"
          + (", encoder.safetensors" if args.with_encoder_weights else ""))
    return 0


# ---------------------------------------------------------------------------------------- benchmark
@command
def benchmark_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    from ..benchmark import BenchSettings, format_report, run_benchmark
    from ..utils.files import json_safe
    from ..utils.runtime import resolve_device

    parser = parser_for("Time decoding, a training step, the CNN and feature extraction, each against the "
                        "design users would otherwise run (a per-image beam-search loop, the CNN on every "
                        "batch); prints the tables and the speedups.", prog=prog)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parts", nargs="+", default=list(BenchSettings().parts),
                        choices=list(BenchSettings().parts))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds): checks that it runs")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 columns")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="also write the results as JSON to FILE (no FILE: to stdout instead of the tables)")
    parser.add_argument("--serving", default=None, metavar="MODEL",
                        help="instead: start show-attend serve --model MODEL and measure images/s and latency "
                             "at --clients concurrent clients")
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32], help="with --serving")
    parser.add_argument("--hostile", action="store_true", help="with --serving: a normal client's latency and the "
                        "server's memory under large-pixel images and 5,000 idle connections instead")
    parser.add_argument("--bomb-clients", type=int, default=1, metavar="N",
                        help="with --hostile: clients sending large-pixel images back to back at once (default 1)")
    parser.add_argument("--idle-connections", type=int, default=5000, metavar="N",
                        help="with --hostile: idle connections to open, at most (bounded by the fd limit too)")
    parser.add_argument("--requests", type=int, default=40, metavar="N",
                        help="with --hostile: the normal client's requests per phase")
    parser.add_argument("--connect-seconds", type=float, default=20.0, metavar="S",
                        help="with --hostile: the time allowed to open the idle connections")
    args = parser.parse_args(argv)
    if args.serving:
        from .serving import serving_benchmark_main

        return serving_benchmark_main(args)
    settings = BenchSettings.quick() if args.quick else BenchSettings()
    settings.parts = tuple(args.parts)
    if args.no_bf16:
        settings.bf16 = (False,)
    result = json_safe(run_benchmark(resolve_device(args.device), settings))
    return report_result(result, format_report, args.json)


# ---------------------------------------------------------------------------------------- attention
@command
def visualize_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    from ..viz.boxes import open_entities
    from ..viz.gallery import render_images, render_split_gallery

    parser = parser_for("Attention heatmaps over each generated word (the paper's Figure 3), for image "
                        "files (with the shipped Flickr8k model unless --model or --checkpoint names another) "
                        "or a gallery of a dataset split with references and per-image CIDEr.", prog=prog)
    parser.add_argument("images", nargs="*", type=Path, help="image files (or use --split)")
    model_args(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--beam-size", type=int, default=None)
    parser.add_argument("--split", default=None, help="render a gallery of this split instead of files")
    parser.add_argument("--num", type=int, default=20, help="gallery size (with --split)")
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    parser.add_argument("--gif", action="store_true", help="also write an animated GIF per image")
    parser.add_argument("--upsample", default="bilinear", choices=["bilinear", "gaussian", "nearest"])
    parser.add_argument("--cmap", default="jet")
    parser.add_argument("--overlay-alpha", type=float, default=0.6)
    parser.add_argument("--entities", default=None, help="a Flickr30k Entities folder: draw the human boxes of the "
                        "words that name an annotated phrase (default: the config's data.entities_dir)")
    args = parser.parse_args(argv)
    if not args.images and not args.split:
        parser.error("give image files or --split")
    style = {"upsample": args.upsample, "cmap": args.cmap, "overlay_alpha": args.overlay_alpha}
    if args.split and (args.checkpoint is None or args.ensemble):
        parser.error("--split renders a gallery of one checkpoint's dataset: give --checkpoint (no --ensemble)")
    captioner = load_captioner(args, parser)  # built once, for the gallery and the images
    if not captioner.attends:
        print("no heatmaps: the model has no attention (model.attention=none); "
              "show-attend caption gives its captions")
        return 0
    entities, note = open_entities(args.entities or captioner.cfg.data.entities_dir)
    if note:
        print(note)
    if args.split:
        index = render_split_gallery(args.checkpoint, split=args.split, num=args.num, out_dir=args.out,
                                     beam_size=args.beam_size, encoder_weights=args.encoder_weights,
                                     captioner=captioner, entities=entities or "", **style)
        print(f"gallery: {index} (open it in a browser)")
    failed = []
    if args.images:
        print(f"attention shown: {captioner.attention_note}")
        paths, _, failed = readable_images(args.images)
        for path in render_images(captioner, paths, args.out, beam_size=args.beam_size,
                                  fmt=args.format, gif=args.gif, entities=entities, **style) if paths else []:
            print(path)
    return report_failed(failed, len(args.images) - len(failed))


# ---------------------------------------------------------------------------------------- results table
@command
def results_table_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    from ..evaluation.tables import grounding_markdown, read_history_row, read_row, results_markdown

    parser = parser_for("A markdown table (scores x100) from evaluation folders written by tools/evaluate.py, "
                        "or (--epoch N) from run folders' validation after N epochs.", prog=prog)
    parser.add_argument("evals", nargs="+", type=Path,
                        help="evaluation folders (or their metrics.json); run folders with --epoch")
    parser.add_argument("--labels", nargs="*", default=None, help="row labels, one per folder (default: run name)")
    parser.add_argument("--epoch", type=int, default=None,
                        help="read each run folder's history.jsonl at this epoch (compare runs at one budget)")
    parser.add_argument("--grounding", action="store_true",
                        help="tabulate the attention grounding (synthetic shapes, or Flickr30k Entities boxes)")
    args = parser.parse_args(argv)
    if args.grounding and args.epoch is not None:
        parser.error("--grounding reads evaluation folders, not --epoch histories")
    if args.labels and len(args.labels) != len(args.evals):
        parser.error(f"{len(args.labels)} labels for {len(args.evals)} folders")
    labels = args.labels or [None] * len(args.evals)
    read = read_row if args.epoch is None else partial(read_history_row, epoch=args.epoch)
    rows = [read(p, label=label) for p, label in zip(args.evals, labels)]
    print(grounding_markdown(rows) if args.grounding else results_markdown(rows))
    return 0


__all__ = ["UsageError", "benchmark_main", "caption_main", "evaluate_main", "export_main", "extract_main", "prepare_main",
           "results_table_main", "train_main", "visualize_main"]
