"""The trained models that ship inside the package, by name: no download, no link that can die.

    show_attend/pretrained_models/<name>/   an exported model folder (``show_attend.pretrained``):
        model.json, vocab.json, decoder-0.safetensors and encoder.safetensors (float16), README.md

``Captioner.from_pretrained("<name>")`` and ``--model <name>`` find them here; ``caption``,
``visualize`` and ``serve`` use :data:`DEFAULT_MODEL` when no model is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

#: The model the commands use when none is given: Flickr8k, VGG16 7x7, LayerNorm'd annotations, then
#: self-critical training (configs/flickr8k_vgg16_7x7_ln_scst.yaml); its card is its README.md.
DEFAULT_MODEL = "flickr8k_vgg16_7x7_ln_scst"


def models_dir() -> Path:
    """Where the shipped models lie inside the installed package."""
    return Path(__file__).resolve().parent / "pretrained_models"


def shipped_models() -> list[str]:
    """The names of the models in the package (folders with a model.json)."""
    root = models_dir()
    return sorted(p.parent.name for p in root.glob("*/model.json")) if root.is_dir() else []


def shipped_model_folder(name: str) -> Optional[Path]:
    """The folder of the shipped model ``name``, or None when the package has no such model."""
    folder = models_dir() / str(name)
    return folder if "/" not in str(name) and (folder / "model.json").is_file() else None


def default_model_folder() -> Path:
    """The folder of :data:`DEFAULT_MODEL`; a clear error when this copy of the package lacks it."""
    folder = shipped_model_folder(DEFAULT_MODEL)
    if folder is None:
        raise FileNotFoundError(f"the shipped model {DEFAULT_MODEL!r} is not in this installation "
                                f"({models_dir()}): reinstall show-attend, or give --model FOLDER / --checkpoint CKPT")
    return folder
