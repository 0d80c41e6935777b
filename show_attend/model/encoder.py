"""The CNN encoder: VGG16 up to ``block5_conv3`` (after its ReLU), pooled to a g x g grid.

    image (B, 3, S, S) -> block5_conv3 (B, 512, S/16, S/16) -> adaptive max-pool -> (B, 512, g, g)
    -> annotation vectors a (B, L = g*g, D = 512)

At S = 224 the block5_conv3 map is 14x14: g = 14 keeps it (the paper's grid), g = 7 is a 2x2 max
pool of it, i.e. VGG's own pool5. At S = 112 the map is already 7x7.

``pool="avg"`` averages instead of taking the max (not in the paper). A max-pooled cell next to an
object takes the strongest of its sub-cells, the one on the object's edge, so it looks much like the
object's own cells; an averaged one is diluted by the background it also covers. On the synthetic
shapes the cell whose features an object changes most lies inside the object's box more often with
averaging (GROUNDING.md).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ..config import check_choice

LOG = logging.getLogger(__name__)

# Index of block5_conv3's ReLU in torchvision's vgg16().features; features[30] is pool5.
_BLOCK5_CONV3_RELU = 29
_BLOCK5_START = 24  # features[24] is block5_conv1
FEATURE_DIM = 512
#: torchvision's VGG16 ImageNet weights (encoder.weights: imagenet); they carry their own transform.
IMAGENET_WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but could not be obtained (offline)."""


def _offline_message(reason: str) -> str:
    return (
        "Could not get torchvision's ImageNet VGG16 weights "
        f"({reason}). This machine seems to be offline. Either\n"
        "  * pass a local weights file: --set encoder.weights=/path/to/vgg16.pth (torchvision's\n"
        "    vgg16-397923af.pth, or any state_dict with the keys of vgg16().features), or\n"
        "  * copy vgg16-397923af.pth into the torch hub cache "
        f"({Path(torch.hub.get_dir()) / 'checkpoints'}), or\n"
        "  * train with random features: --set encoder.weights=none (captions will be poor)."
    )


def load_vgg16_features_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a VGG16 state_dict file, return the ``features.*`` part with the ``features.`` prefix removed.

    Accepts torchvision's full file (``classifier.*`` is ignored), a features-only file with or
    without the ``features.`` prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file not found: {path}")
    if path.suffix == ".safetensors":  # an exported model folder's copy of the weights
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict, got {type(state).__name__}")
    out = {}
    for key, value in state.items():
        if key.startswith("classifier."):
            continue
        key = key[len("features."):] if key.startswith("features.") else key
        out[key] = value
    return out


def imagenet_normalization() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the input normalisation, as torchvision's VGG16 ImageNet weights declare it.

    Read from the weights enum's own transform (no download), so the preprocessing always matches
    the weights it was published with.
    """
    preset = IMAGENET_WEIGHTS.transforms()
    return tuple(float(v) for v in preset.mean), tuple(float(v) for v in preset.std)


def _vgg16_features(weights: str, allow_random_fallback: bool) -> tuple[nn.Sequential, str]:
    """Return torchvision's VGG16 ``features`` with the requested weights and a label for them."""
    if weights == "imagenet":
        try:
            model = torchvision.models.vgg16(weights=IMAGENET_WEIGHTS)
            return model.features, "imagenet"
        except Exception as exc:  # URLError, OSError, hash mismatch ...
            message = _offline_message(f"{type(exc).__name__}: {exc}")
            if not allow_random_fallback:
                raise WeightsUnavailableError(message) from exc
            warnings.warn(message + "\nFalling back to RANDOM encoder weights: captions will be poor.",
                          stacklevel=3)
            return torchvision.models.vgg16(weights=None).features, "none (imagenet unavailable)"
    features = torchvision.models.vgg16(weights=None).features
    if weights in ("none", "", "random"):
        return features, "none"
    state = load_vgg16_features_state(weights)
    missing, unexpected = features.load_state_dict(state, strict=False)
    needed = [k for k in missing if int(k.split(".")[0]) <= _BLOCK5_CONV3_RELU]
    if needed or unexpected:
        raise ValueError(f"{weights}: not a VGG16 state_dict (missing {needed}, unexpected {unexpected})")
    return features, str(weights)


class VGG16Encoder(nn.Module):
    """VGG16 block1..block5_conv3 (+ReLU) and an adaptive max- (or avg-) pool to ``grid_size`` x ``grid_size``.

    forward: images (B, 3, S, S), ImageNet-normalised -> annotations (B, L, 512), L = grid_size^2.
    """

    def __init__(self, weights: str = "imagenet", grid_size: int = 7, fine_tune_last_block: bool = False,
                 allow_random_fallback: bool = False, pool: str = "max"):
        super().__init__()
        check_choice("encoder.pool", pool)
        features, self.weights_label = _vgg16_features(weights, allow_random_fallback)
        self.cnn = features[: _BLOCK5_CONV3_RELU + 1]  # conv1_1 .. block5_conv3 + ReLU
        self.grid_size = grid_size
        self.pool = pool
        self.set_fine_tuning(fine_tune_last_block)

    def set_fine_tuning(self, fine_tune_last_block: bool) -> None:
        """Freeze everything, then unfreeze block5 (conv5_1..conv5_3) if asked."""
        self.fine_tune_last_block = fine_tune_last_block
        for i, layer in enumerate(self.cnn):
            for p in layer.parameters():
                p.requires_grad = fine_tune_last_block and i >= _BLOCK5_START

    def block5_state(self) -> dict[str, torch.Tensor]:
        """The state of block 5 (conv5_1..conv5_3), the part fine-tuning changes (what checkpoints store)."""
        return {k: v for k, v in self.state_dict().items() if int(k.split(".")[1]) >= _BLOCK5_START}

    def load_block5_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state written by :meth:`block5_state` (any other key is an error)."""
        own = self.block5_state()
        unexpected = [k for k in state if k not in own]
        if unexpected:
            raise ValueError(f"not a VGG16 block-5 state: unexpected keys {unexpected[:4]}")
        self.load_state_dict(state, strict=False)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 512, g, g)."""
        fmap = self.cnn(images)  # (B, 512, S/16, S/16)
        if fmap.shape[-1] != self.grid_size or fmap.shape[-2] != self.grid_size:
            pool = F.adaptive_max_pool2d if self.pool == "max" else F.adaptive_avg_pool2d
            fmap = pool(fmap, self.grid_size)  # (B, 512, g, g)
        return fmap

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(images)  # (B, 512, g, g)
        return fmap.flatten(2).transpose(1, 2)  # (B, L, 512), cell i = row * g + col


def build_encoder(cfg, *, allow_random_fallback: Optional[bool] = None) -> VGG16Encoder:
    """Build the encoder from an ``EncoderConfig``."""
    if cfg.name != "vgg16":
        raise ValueError(f"unknown encoder {cfg.name!r}; available: vgg16")
    fallback = cfg.allow_random_fallback if allow_random_fallback is None else allow_random_fallback
    return VGG16Encoder(cfg.weights, cfg.grid_size, cfg.fine_tune_last_block, fallback, cfg.pool)
