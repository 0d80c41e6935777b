"""The ``show-attend`` command: one entry point, a subcommand per pipeline step.

    show-attend prepare   --config NAME|FILE   splits, tokenised captions, vocabulary
    show-attend extract   --config NAME|FILE   the encoder once per split into the feature cache
    show-attend train     --config NAME|FILE   teacher forcing (or self-critical), then a test report
    show-attend evaluate  --checkpoint RUN     decode a split, score it with pycocoevalcap
    show-attend caption   IMAGE... --model FOLDER (or --checkpoint RUN [--ensemble RUN...])
    show-attend export    RUN... --out FOLDER       a portable model folder (an ensemble for several)
    show-attend visualize IMAGE... --checkpoint RUN --out DIR   per-word attention heatmaps
    show-attend serve     --model FOLDER|RUN...   a web page and HTTP API (pip install "show-attend[serve]")
    show-attend benchmark                      throughput of each stage
    show-attend results   EVAL_DIR...          a markdown results table

``python -m show_attend`` is the same command; ``tools/*.py`` call the same functions.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from ..version import __version__
from .commands import (benchmark_main, caption_main, evaluate_main, export_main, extract_main, prepare_main,
                       results_table_main, train_main, visualize_main)
from .serving import serve_main

PROG = "show-attend"
#: subcommand -> (function, one line of help)
COMMANDS: dict[str, tuple[Callable[..., int], str]] = {
    "prepare": (prepare_main, "prepare a dataset: splits, tokenised captions, vocabulary"),
    "extract": (extract_main, "run the encoder once per split into the feature cache"),
    "train": (train_main, "train a captioner (teacher forcing or self-critical), then report the test split"),
    "evaluate": (evaluate_main, "decode a split with a checkpoint and score it (BLEU, METEOR, ROUGE-L, CIDEr)"),
    "caption": (caption_main, "caption image files (--model FOLDER, or --checkpoint [--ensemble ...])"),
    "export": (export_main, "a checkpoint (or an ensemble) as a portable model folder (safetensors, JSON, model card)"),
    "visualize": (visualize_main, "attention heatmaps over each generated word (Figure 3), or a split gallery"),
    "serve": (serve_main, "a web page and HTTP API: upload an image, see its caption and each word's attention"),
    "benchmark": (benchmark_main, "throughput of the encoder, a training step and decoding"),
    "results": (results_table_main, "a markdown results table from evaluation folders"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} <command> [options]   ({PROG} <command> --help for its options)", "",
             "Image captioning with soft visual attention (Show, Attend and Tell).", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Configs: `--config NAME` takes a shipped config (e.g. shapes_demo, flickr8k_vgg16_7x7) or a "
              "YAML file;", f"`{PROG} train --help` lists the config sections and keys."]
    return "\n".join(lines)


def run(name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Run subcommand ``name`` with ``argv`` (default: the process's arguments), as ``show-attend name``."""
    fn, _ = COMMANDS[name]
    return fn(list(sys.argv[1:] if argv is None else argv), prog=f"{PROG} {name}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"{PROG} {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{PROG}: unknown command {argv[0]!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return run(argv[0], argv[1:])


__all__ = ["COMMANDS", "benchmark_main", "caption_main", "evaluate_main", "export_main", "extract_main", "main", "prepare_main",
           "results_table_main", "run", "serve_main", "train_main", "visualize_main"]
