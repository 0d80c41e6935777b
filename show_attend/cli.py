"""Command-line entry points; ``tools/*.py`` and the installed ``show-attend-*`` scripts call these."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .config import ConfigError, load_config


def _config_args(parser: argparse.ArgumentParser, default_config: Optional[Path]) -> None:
    parser.add_argument("--config", type=Path, default=default_config,
                        help=f"YAML config file (default: {default_config or 'built-in defaults'})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model.attention_dim=256 (repeatable)")


def _load(args) -> "object":
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as exc:
        sys.exit(f"config error: {exc}")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    warnings.simplefilter("default")


# ---------------------------------------------------------------------------------------- train
def train_main(argv: Optional[Sequence[str]] = None, default_config: Optional[Path] = None) -> int:
    from .encoder import WeightsUnavailableError
    from .trainer import train

    parser = argparse.ArgumentParser(description="Train a soft-attention captioner (teacher forcing).")
    _config_args(parser, default_config)
    parser.add_argument("--resume", type=Path, default=None,
                        help="a run folder (or its last.pt) to continue; its config.yaml is used, "
                             "--set still applies")
    parser.add_argument("--no-eval", action="store_true", help="skip the final test-split evaluation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    _setup_logging()
    if args.resume is not None:
        run = args.resume if args.resume.is_dir() else args.resume.parent
        args.config = run / "config.yaml"
    cfg = _load(args)
    t0 = time.time()
    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress)
    except (WeightsUnavailableError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\ntraining finished in {(time.time() - t0) / 60:.1f} min; run folder: {run_dir}")
    print(f"  checkpoints : {run_dir / 'best.pt'} (best val {cfg.train.val_metric}), {run_dir / 'last.pt'}")
    print(f"  TensorBoard : tensorboard --logdir {run_dir / 'tb'}")
    if not args.no_eval:
        from .evaluation import evaluate_checkpoint

        out = run_dir / "eval_test"
        report = evaluate_checkpoint(run_dir / "best.pt", split="test", out_dir=out,
                                     beam_size=cfg.decode.beam_size, progress=not args.no_progress)
        print(report.markdown_table)
        print(f"  test report : {out / 'report.md'} (metrics.json, results.json, samples.txt)")
    return 0


# ---------------------------------------------------------------------------------------- prepare
def prepare_main(argv: Optional[Sequence[str]] = None, default_config: Optional[Path] = None) -> int:
    from .data.prepare import format_summary, prepare_dataset

    parser = argparse.ArgumentParser(description="Prepare a dataset: splits, tokenised captions, vocabulary.")
    _config_args(parser, default_config)
    parser.add_argument("--force", action="store_true", help="re-read the raw files even if prepared")
    args = parser.parse_args(argv)
    _setup_logging()
    cfg = _load(args)
    try:
        dataset = prepare_dataset(cfg.data, force=args.force)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(dataset.summary))
    print(f"prepared dataset written to {dataset.root}")
    return 0


# ---------------------------------------------------------------------------------------- features
def extract_main(argv: Optional[Sequence[str]] = None, default_config: Optional[Path] = None) -> int:
    from .data.prepare import prepare_dataset
    from .encoder import WeightsUnavailableError, build_encoder
    from .features import ensure_features
    from .utils import resolve_device

    parser = argparse.ArgumentParser(description="Run the encoder once per split into the feature cache.")
    _config_args(parser, default_config)
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    args = parser.parse_args(argv)
    _setup_logging()
    cfg = _load(args)
    device = resolve_device(cfg.device)
    try:
        dataset = prepare_dataset(cfg.data)
        encoder = build_encoder(cfg.encoder)
    except (WeightsUnavailableError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split in args.splits:
        if not dataset.split(split):
            print(f"{split}: no images (skipped)")
            continue
        t0 = time.time()
        store = ensure_features(dataset, cfg.encoder, split, device, cfg.data.num_workers, encoder=encoder)
        size = store.path.stat().st_size
        print(f"{split}: {len(store)} images -> {store.path} ({size / 2**20:.1f} MiB, "
              f"{size / max(len(store), 1) / 1000:.1f} KB/image, {time.time() - t0:.0f}s)")
    return 0


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))
