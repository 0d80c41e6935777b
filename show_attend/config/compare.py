"""Which settings may change when a run is resumed or a checkpoint is reused, and the check.

A checkpoint means something only with the settings it was trained with: the vocabulary (data
source and ``min_word_count``), the features (encoder, grid, image size, resize, pool) and the
model. Resuming may change how long and how fast training goes and where the data lies; reusing
a checkpoint (evaluate, caption, ensembles) may change the data it is applied to and the
decoding. Anything else is refused, with the differing keys named, before anything is written.
"""
from __future__ import annotations

from typing import Any, Iterable

from .parse import ConfigError, flat
from .schema import Config, weights_label

#: Settings ``--resume`` may change (everything else would change what the checkpoint means).
RESUME_MAY_CHANGE = (
    "name", "device", "output_dir", "train.epochs", "train.log_every", "train.val_every", "train.val_beam_size",
    "train.val_max_images", "train.early_stop_patience", "train.max_steps", "train.skip_nonfinite",
    "optim.lr", "optim.encoder_lr", "optim.grad_clip", "data.root", "data.image_dir", "data.cache_dir",
    "data.karpathy_json", "data.entities_dir", "data.num_workers", "encoder.batch_size", "encoder.weights", "decode.beam_size",
    "decode.max_length", "decode.length_penalty", "decode.suppress_unk")
#: Setting prefixes an evaluation or captioning may override on a checkpoint's config.
REUSE_MAY_CHANGE = ("name", "seed", "device", "output_dir", "data.", "decode.", "train.", "optim.",
                    "encoder.weights", "encoder.batch_size", "encoder.allow_random_fallback", "model.hard_decode")


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "encoder.weights":  # the same file at another path is the same weights
        return weights_label(a) == weights_label(b)
    if key == "encoder.precision" and "auto" in (a, b):  # auto: what this machine's CPU resolves it to
        from ..utils.runtime import resolve_precision

        return resolve_precision(a) == resolve_precision(b)
    return a == b


def changed_settings(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (old value, new value)} of the settings that differ."""
    a, b = flat(old.to_dict()), flat(new.to_dict())
    return {k: (a[k], b[k]) for k in a if not _same(k, a[k], b[k])}


def refuse_changes(old: Config, new: Config, allowed: Iterable[str], what: str) -> list[str]:
    """Raise ConfigError naming every changed setting outside ``allowed`` (exact keys or prefixes
    ending in ``.``); return the allowed keys that did change."""
    allowed = tuple(allowed)

    def ok(key: str) -> bool:
        return any(key == a or (a.endswith(".") and key.startswith(a)) for a in allowed)

    changed = changed_settings(old, new)
    refused = {k: v for k, v in changed.items() if not ok(k)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} now" for k, (a, b) in sorted(refused.items()))
        raise ConfigError(f"{what}: these settings change what the checkpoint means ({listed}). Start a new run "
                          f"for them; settings that may change here: {', '.join(allowed)}")
    return sorted(changed)
