"""Checkpoints: ``state_dict``s plus plain data, written atomically, read with ``weights_only=True``.

A checkpoint holds: ``decoder`` (state_dict), ``encoder_block5`` (state_dict of the fine-tuned
conv block, or None), ``config`` (the resolved config as a dict), ``vocab`` (as a dict), ``epoch``,
``step``, ``optimizer``, ``scheduler``, ``rng`` (python / numpy / torch / cuda states), ``best``
(metric name and value), ``format``. No pickled module objects: a code change never makes an old
checkpoint unreadable.

:func:`restore` is the one way to rebuild a model from a checkpoint (config, vocabulary, decoder,
and on demand the encoder with its fine-tuned block): the Python API, evaluation, ensembles and
training (``init_from``, ``--resume``) all go through it or through :func:`load_weights`.
"""
from __future__ import annotations

import logging
import pickle
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .config import REUSE_MAY_CHANGE, Config, config_from_dict, refuse_changes, weights_label
from .data.vocab import Vocabulary
from .model.decoder import AttentionDecoder, build_decoder
from .model.encoder import GridEncoder, build_encoder
from .model.specs import feature_dim
from .model.weights import check_fingerprint
from .model.ensemble import DecoderEnsemble
from .utils.files import atomic_write
from .utils.runtime import resolve_device

FORMAT = "show-attend/1"
LOG = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    return atomic_write(path, lambda tmp: torch.save(dict(payload, format=FORMAT), tmp))


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself, or for a run folder its ``best.pt`` (else its ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
    return path


class CheckpointError(ValueError):
    """A file that cannot be read as a show-attend checkpoint; the message names it and says why."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = checkpoint_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    with path.open("rb") as fh:
        legacy = fh.read(2)[:1] == b"\x80"  # torch.save's old (pre-1.6) pickle format
    if not legacy and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated or not a PyTorch file (no zip archive: an interrupted copy "
                              "or download, or another kind of file)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True), so it holds more than "
                              f"tensors and plain data, which a show-attend checkpoint never does ({first})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or not a PyTorch file ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a show-attend checkpoint (format {FORMAT})")
    return payload


def load_weights(payload: dict[str, Any], decoder: torch.nn.Module,
                 encoder: Optional[GridEncoder] = None) -> None:
    """Copy a checkpoint's weights into built modules: the decoder, and the fine-tuned block 5
    of the encoder when the checkpoint has one and an encoder is given."""
    decoder.load_state_dict(payload["decoder"])
    if payload.get("encoder_block5") and encoder is not None:
        encoder.load_block5_state(payload["encoder_block5"])


def init_weights_from(path: str | Path, cfg: Config, vocab: Vocabulary, decoder: torch.nn.Module,
                      encoder: Optional[GridEncoder] = None, device: str | torch.device = "cpu") -> None:
    """``train.init_from``: start a run from another run's weights, refused (with the reason) when its
    vocabulary or decoder settings differ from ``cfg``'s."""
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt["vocab"] != vocab.to_dict():
        raise ValueError(f"train.init_from={path}: its vocabulary differs from this dataset's "
                         "(same data settings and min_word_count needed)")
    # (read through config_from_dict: a key that an older checkpoint lacks takes its default)
    theirs, ours = config_from_dict(ckpt["config"]).to_dict()["model"], cfg.to_dict()["model"]
    differ = [f"model.{k}: {theirs[k]!r} there, {ours[k]!r} here" for k in ours if theirs[k] != ours[k]]
    if differ:
        raise ValueError(f"train.init_from={path}: its decoder was built with other settings ("
                         + "; ".join(differ) + "); set them as that run did")
    load_weights(ckpt, decoder, encoder)
    LOG.info("initialised the weights from %s (epoch %s)", path, ckpt.get("epoch"))


@dataclass
class Restored:
    """A model rebuilt from a checkpoint: what every caller needs, built one way."""

    path: Path  # the .pt file read
    payload: dict[str, Any]  # the checkpoint as stored (epoch, best, ...)
    cfg: Config
    vocab: Vocabulary
    decoder: AttentionDecoder  # weights loaded, on ``device``, in eval mode
    device: torch.device

    @property
    def fine_tuned_encoder(self) -> bool:
        """Whether the checkpoint carries its own block 5 (then cached features do not apply)."""
        return bool(self.payload.get("encoder_block5"))

    def build_encoder(self, allow_random_fallback: Optional[bool] = None) -> GridEncoder:
        """The encoder of the checkpoint's config, with its fine-tuned block 5, on ``device``, eval mode;
        refused (``EncoderMismatchError``) when its weights are not those the decoder was trained on."""
        encoder = build_encoder(self.cfg.encoder, allow_random_fallback=allow_random_fallback)
        check_fingerprint(encoder.weights_fingerprint(), self.payload.get("encoder_fingerprint"),
                          encoder.spec.title, self.cfg.encoder.weights, str(self.path))
        if self.fine_tuned_encoder:
            encoder.load_block5_state(self.payload["encoder_block5"])
        return encoder.to(self.device).eval()


def restore(checkpoint: str | Path, *, device: Optional[str | torch.device] = "cpu",
            overrides: Optional[Sequence[str]] = None, encoder_weights: Optional[str] = None) -> Restored:
    """Rebuild the decoder (and what it needs) from a checkpoint file or run folder.

    ``device`` None: the checkpoint's own ``device`` setting (``auto``: CUDA when there is one).
    ``overrides`` are ``key=value`` settings applied over the checkpoint's config (e.g. a moved
    ``data.root``); ``encoder_weights`` replaces the recorded VGG16 weights (a local file).
    """
    path = checkpoint_file(checkpoint)
    return _rebuild(path, load_checkpoint(path), device, overrides, encoder_weights)


def _rebuild(path: Path, payload: dict[str, Any], device: Optional[str | torch.device],
             overrides: Optional[Sequence[str]] = None, encoder_weights: Optional[str] = None) -> Restored:
    cfg = config_from_dict(payload["config"], list(overrides or []))
    if overrides:  # a grid, image size or model setting other than the checkpoint's would decode nonsense
        refuse_changes(config_from_dict(payload["config"]), cfg, REUSE_MAY_CHANGE, f"{path} with --set")
    if encoder_weights is not None:
        cfg.encoder.weights = encoder_weights
    vocab = Vocabulary.from_dict(payload["vocab"])
    decoder = build_decoder(cfg.model, len(vocab), cfg.encoder.grid_size, feature_dim(cfg.encoder))
    load_weights(payload, decoder)
    device = resolve_device(cfg.device) if device is None else resolve_device(str(device))
    return Restored(path, payload, cfg, vocab, decoder.to(device).eval(), device)


#: Encoder settings the members of an ensemble must share: they read the same annotations.
ENSEMBLE_ENCODER_KEYS = ("name", "weights", "grid_size", "image_size", "resize_mode", "pool")


def restore_ensemble(first: Restored, paths: Sequence[str | Path]) -> tuple[DecoderEnsemble, list[Restored]]:
    """``first``'s decoder plus those of ``paths``, checked to read the same annotations with the
    same vocabulary -> (the ensemble on ``first.device``, the added members as restored)."""
    if first.fine_tuned_encoder:
        raise ValueError("ensembles of checkpoints with a fine-tuned encoder block are not supported")
    members, others = [first.decoder], []
    for path in paths:
        payload = load_checkpoint(path)
        if payload["vocab"] != first.vocab.to_dict():
            raise ValueError(f"ensemble member {path}: its vocabulary differs from the first checkpoint's "
                             "(train the members on the same data with the same min_word_count)")
        other = _rebuild(checkpoint_file(path), payload, first.device)
        if other.fine_tuned_encoder:
            raise ValueError(f"ensemble member {path} fine-tuned its encoder block: not supported in an ensemble")
        for key in ENSEMBLE_ENCODER_KEYS:
            mine, theirs = getattr(first.cfg.encoder, key), getattr(other.cfg.encoder, key)
            if key == "weights":
                mine, theirs = weights_label(mine), weights_label(theirs)
            if mine != theirs:
                raise ValueError(f"ensemble member {path}: encoder.{key} is {theirs!r}, the first checkpoint's "
                                 f"{mine!r}; members must read the same annotations")
        members.append(other.decoder)
        others.append(other)
    return DecoderEnsemble(members).eval(), others
