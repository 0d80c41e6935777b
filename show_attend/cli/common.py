"""What every subcommand shares: the error wrapper, the config arguments, logging.

Exit codes, the same for every command: 0 success, 1 a failure while running (a metric backend,
a file that cannot be read or written), 2 a usage or configuration error (a bad flag, an unknown
config key, a missing input file, weights that cannot be had offline), 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..config import Config, ConfigError, available_configs, load_config

DEFAULT_CONFIG = "shapes_demo"


class UsageError(ValueError):
    """A command-line input that cannot be used (exit code 2)."""


def command(fn: Callable[..., int]) -> Callable[..., int]:
    """Run a subcommand; turn the errors a user can act on into one line on stderr and an exit code."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        from ..model.encoder import WeightsUnavailableError

        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            print(f"config error: {exc}", file=sys.stderr)
            return 2
        except (WeightsUnavailableError, FileNotFoundError, UsageError, ValueError, KeyError) as exc:
            print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:  # a training run says where it saved and how to resume
            print(str(exc) or "interrupted", file=sys.stderr)
            return 130
        except (OSError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return wrapper


def config_sections_help() -> str:
    """The config's sections and keys and the shipped configs, for ``--help``."""
    cfg = Config()
    lines = ["config sections (set any key with --set section.key=value):"]
    top = []
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"  {f.name}: {', '.join(k.name for k in dataclasses.fields(value))}")
        else:
            top.append(f.name)
    lines.append(f"  (top level): {', '.join(top)}")
    lines.append("shipped configs (--config NAME): " + ", ".join(available_configs()))
    return "\n".join(lines)


def parser_for(description: str, with_config: bool = False, default_config: Optional[str] = None,
               prog: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser; with ``with_config``, the ``--config`` / ``--set`` pair and the sections in --help."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     epilog=config_sections_help() if with_config else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if with_config:
        config_args(parser, default_config)
    return parser


def config_args(parser: argparse.ArgumentParser, default_config: Optional[str]) -> None:
    parser.add_argument("--config", default=default_config,
                        help="a YAML config file, or the name of a shipped config "
                             f"(default: {default_config or 'built-in defaults'})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model.attention_dim=256 (repeatable)")


def load_cli_config(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    warnings.simplefilter("default")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def readable_images(paths: Sequence[Any], min_side: Optional[int] = None) -> tuple[list[Any], list[Any], list[str]]:
    """Open every image once: (the readable paths, their RGB images, one line per unreadable file).
    ``min_side``: decode reduced while the short side stays at least that (``data.images.open_scaled``,
    as the web server does: a large JPEG decodes at 1/2-1/8 scale)."""
    from ..data.images import ImageError, open_scaled

    good, images, failed = [], [], []
    for path in paths:
        try:
            images.append(open_scaled(path, min_side)[0])
            good.append(path)
        except ImageError as exc:
            failed.append(str(exc))
    return good, images, failed


def report_failed(failed: Sequence[str], done: int) -> int:
    """Name the inputs that could not be used on stderr; exit code 1 if there are any, else 0."""
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(failed) + done} images could not be read (listed above)", file=sys.stderr)
    return 1 if failed else 0


def model_args(parser: argparse.ArgumentParser) -> None:
    """--model (an exported folder or Hub id) or --checkpoint (+ --ensemble), --encoder-weights, --device."""
    from ..zoo import DEFAULT_MODEL

    parser.add_argument("--model", default=None,
                        help="a shipped model's name, an exported model folder (show-attend export) or a Hub id "
                             f"(default, with no --checkpoint either: the shipped {DEFAULT_MODEL}, trained on "
                             "Flickr8k photos)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a .pt file or a run folder")
    parser.add_argument("--ensemble", nargs="+", type=Path, default=[], metavar="CKPT",
                        help="further checkpoints decoded together with --checkpoint (probabilities averaged; "
                             "the attention shown is the members' mean)")
    parser.add_argument("--encoder-weights", default=None, help="the VGG16 weights file (if it moved)")
    parser.add_argument("--device", default=None)


def load_captioner(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The Captioner that --model or --checkpoint/--ensemble names; neither: the shipped default model."""
    from ..api import Captioner
    from ..zoo import DEFAULT_MODEL

    if args.model is not None and args.checkpoint is not None:
        parser.error("give --model FOLDER or --checkpoint CKPT (one of them)")
    if args.model is None and args.checkpoint is None:
        if args.ensemble:
            parser.error("--ensemble goes with --checkpoint")
        args.model = DEFAULT_MODEL
    if args.model is not None:
        if args.ensemble:
            parser.error("--ensemble goes with --checkpoint; export an ensemble into one --model folder instead")
        return Captioner.from_pretrained(args.model, device=args.device, encoder_weights=args.encoder_weights)
    return Captioner.from_checkpoints([args.checkpoint, *args.ensemble], device=args.device,
                                      encoder_weights=args.encoder_weights)


def captioner_from_models(models: Sequence[Any], device: Optional[str] = None, encoder_weights: Optional[str] = None):
    """The Captioner of one or more ``--model`` values: an exported folder (``model.json``; one
    folder may hold an ensemble) or a Hub id, or checkpoints / run folders (several: an ensemble)."""
    from ..api import Captioner

    paths = [Path(m) for m in models]
    exported = [p for p in paths if (p / "model.json").is_file() or not p.exists()]
    if exported and len(paths) > 1:
        raise UsageError(f"{exported[0]} is an exported model folder (or a Hub id): give it alone as --model, or "
                         "export the ensemble into one folder (show-attend export A.pt B.pt --out FOLDER)")
    if exported:
        return Captioner.from_pretrained(str(models[0]), device=device, encoder_weights=encoder_weights)
    return Captioner.from_checkpoints(paths, device=device, encoder_weights=encoder_weights)


def report_result(result: dict, formatter, json_path: Optional[str]) -> int:
    """A benchmark's result: as JSON on stdout (``--json -``), or as text (and to a JSON file)."""
    from ..utils.files import atomic_write_json

    if json_path == "-":
        print_json(result)
        return 0
    print(formatter(result))
    if json_path:
        atomic_write_json(json_path, result)
        print(f"wrote {json_path}")
    return 0
