"""The CNN encoders: a torchvision or timm network up to the map it taps, pooled to a g x g grid.

    image (B, 3, S, S) -> tapped map (B, D, n, n) -> adaptive max-pool (n > g) -> (B, D, g, g)
    -> annotation vectors a (B, L = g*g, D)

Which map each ``encoder.name`` taps, its D and its geometry are in ``model.specs`` (VGG16/19's
block5 conv 512, a ResNet's layer4 2048 or layer3 1024, Xception's last map 2048); the networks and
their weights come from ``model.weights``, the ResNets and Xception from ``model.backbones``.

VGG16 (the default) keeps ``block5_conv3`` (after its ReLU), S/16 x S/16: at S = 224 the map is
14x14: g = 14 keeps it (the paper's grid), g = 7 is a 2x2 max pool of it, i.e. VGG's own pool5. At
S = 112 the map is already 7x7.

``pool="avg"`` averages instead of taking the max (not in the paper). A max-pooled cell next to an
object takes the strongest of its sub-cells, the one on the object's edge, so it looks much like the
object's own cells; an averaged one is diluted by the background it also covers. On the synthetic
shapes the cell whose features an object changes most lies inside the object's box more often with
averaging (GROUNDING.md).

``fine_tune_last_block`` unfreezes the tapped map's last block (VGG: block 5; a ResNet: the tapped
stage, layer4 or layer3; Xception: its exit flow, block12 to conv4). BatchNorm layers always use
their ImageNet statistics (eval mode, whatever the encoder's mode): fine-tuning adapts their scale
and shift in the last block, never the running statistics of the frozen layers.
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
from .specs import EncoderSpec, Tap, encoder_spec, native_map_size, resolve_tap
from .weights import (EncoderUnavailableError, WeightsUnavailableError, load_state_file, normalization,
                      offline_message, weights_fingerprint)

LOG = logging.getLogger(__name__)

__all__ = ["EncoderUnavailableError", "GridEncoder", "IMAGENET_WEIGHTS", "VGG16Encoder", "VGGEncoder",
           "WeightsUnavailableError", "build_encoder", "imagenet_normalization", "load_vgg16_features_state"]

# Index of block5_conv3's ReLU in torchvision's vgg16().features; features[30] is pool5.
_BLOCK5_CONV3_RELU = 29
_BLOCK5_START = 24  # features[24] is block5_conv1
FEATURE_DIM = 512  # VGG16's D (other encoders: model.specs)
#: torchvision's VGG16 ImageNet weights (encoder.weights: imagenet); they carry their own transform.
IMAGENET_WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1


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
    """Read a VGG16 (or VGG19) state_dict file, return the ``features.*`` part with the ``features.``
    prefix removed.

    Accepts torchvision's full file (``classifier.*`` is ignored), a features-only file with or
    without the ``features.`` prefix.
    """
    out = {}
    for key, value in load_state_file(path).items():
        if key.startswith("classifier."):
            continue
        key = key[len("features."):] if key.startswith("features.") else key
        out[key] = value
    return out


def imagenet_normalization(name: str = "vgg16") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the input normalisation, as the encoder's ImageNet weights declare it.

    Read from torchvision's weights enum (its own transform) or timm's pretrained config, no
    download, so the preprocessing always matches the weights it was published with.
    """
    if name == "vgg16":
        preset = IMAGENET_WEIGHTS.transforms()
        return tuple(float(v) for v in preset.mean), tuple(float(v) for v in preset.std)
    return normalization(encoder_spec(name))


def _vgg_features(spec: EncoderSpec, weights: str, allow_random_fallback: bool) -> tuple[nn.Sequential, str]:
    """Return torchvision's VGG ``features`` with the requested weights and a label for them."""
    builder = getattr(torchvision.models, spec.builder)  # looked up now: tests replace it
    last = int(spec.taps[0].layer.split(".")[1])
    if weights == "imagenet":
        try:
            return builder(weights=torchvision.models.get_weight(spec.weights)).features, "imagenet"
        except Exception as exc:  # URLError, OSError, hash mismatch ...
            reason = f"{type(exc).__name__}: {exc}"
            message = _offline_message(reason) if spec.name == "vgg16" else offline_message(spec, reason)
            if not allow_random_fallback:
                raise WeightsUnavailableError(message) from exc
            warnings.warn(message + "\nFalling back to RANDOM encoder weights: captions will be poor.",
                          stacklevel=4)
            return builder(weights=None).features, "none (imagenet unavailable)"
    features = builder(weights=None).features
    if weights in ("none", "", "random"):
        return features, "none"
    state = load_vgg16_features_state(weights)
    missing, unexpected = features.load_state_dict(state, strict=False)
    needed = [k for k in missing if int(k.split(".")[0]) <= last]
    if needed or unexpected:
        raise ValueError(f"{weights}: not a {spec.title} state_dict (missing {needed}, unexpected {unexpected})")
    return features, str(weights)


class GridEncoder(nn.Module):
    """A CNN (``self.cnn``) whose tapped map is pooled to ``grid_size`` x ``grid_size`` annotations.

    forward: images (B, 3, S, S), normalised as the weights want -> annotations (B, L, D), L = grid_size^2.
    Subclasses build ``self.cnn`` and say which of its modules form the last block (``tap.last_block``).
    """

    def __init__(self, spec: EncoderSpec, tap: Tap, grid_size: int, pool: str):
        super().__init__()
        check_choice("encoder.pool", pool)
        self.spec, self.tap = spec, tap
        self.name = spec.name
        self.feature_dim = tap.channels  # D
        self.grid_size = grid_size
        self.pool = pool

    def _map(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images)  # (B, D, n, n)

    def weights_fingerprint(self) -> str:
        """The fingerprint of the network's weights as they are now (``weights.weights_fingerprint``);
        taken before fine-tuning changes the last block, it names the ImageNet weights themselves."""
        return weights_fingerprint(self.cnn.state_dict())

    def set_fine_tuning(self, fine_tune_last_block: bool) -> None:
        """Freeze everything, then unfreeze the last block if asked."""
        self.fine_tune_last_block = fine_tune_last_block
        last = tuple(f"{name}." for name in self.tap.last_block)
        for name, p in self.cnn.named_parameters():
            p.requires_grad = fine_tune_last_block and name.startswith(last)

    def _in_last_block(self, key: str) -> bool:
        return key.split(".", 1)[1].startswith(tuple(f"{name}." for name in self.tap.last_block))

    def block5_state(self) -> dict[str, torch.Tensor]:
        """The state of the last block (VGG16's block 5: conv5_1..conv5_3), the part fine-tuning changes
        (what checkpoints store, under the name ``encoder_block5`` for every encoder)."""
        return {k: v for k, v in self.state_dict().items() if self._in_last_block(k)}

    def load_block5_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state written by :meth:`block5_state` (any other key is an error)."""
        own = self.block5_state()
        unexpected = [k for k in state if k not in own]
        if unexpected:
            raise ValueError(f"not a {self.spec.title} last-block state: unexpected keys {unexpected[:4]}")
        self.load_state_dict(state, strict=False)

    def train(self, mode: bool = True) -> "GridEncoder":
        super().train(mode)
        for m in self.modules():  # ImageNet statistics always (see the module docstring)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D, g, g)."""
        fmap = self._map(images)  # (B, D, n, n), n = S/16 for VGG
        if fmap.shape[-1] != self.grid_size or fmap.shape[-2] != self.grid_size:
            pool = F.adaptive_max_pool2d if self.pool == "max" else F.adaptive_avg_pool2d
            fmap = pool(fmap, self.grid_size)  # (B, D, g, g)
        return fmap

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(images)  # (B, D, g, g)
        return fmap.flatten(2).transpose(1, 2)  # (B, L, D), cell i = row * g + col


class VGGEncoder(GridEncoder):
    """VGG16 block1..block5_conv3 (+ReLU), or VGG19 up to block5_conv4, pooled to the grid.

    forward: images (B, 3, S, S), ImageNet-normalised -> annotations (B, L, 512), L = grid_size^2.
    """

    def __init__(self, name: str = "vgg16", weights: str = "imagenet", grid_size: int = 7,
                 fine_tune_last_block: bool = False, allow_random_fallback: bool = False, pool: str = "max"):
        spec = encoder_spec(name)
        super().__init__(spec, spec.taps[0], grid_size, pool)
        features, self.weights_label = _vgg_features(spec, weights, allow_random_fallback)
        self.cnn = features[: int(self.tap.layer.split(".")[1]) + 1]  # conv1_1 .. block5's last conv + ReLU
        self.set_fine_tuning(fine_tune_last_block)


class VGG16Encoder(VGGEncoder):
    """VGG16 block1..block5_conv3 (+ReLU) and an adaptive max- (or avg-) pool to ``grid_size`` x ``grid_size``.

    forward: images (B, 3, S, S), ImageNet-normalised -> annotations (B, L, 512), L = grid_size^2.
    """

    def __init__(self, weights: str = "imagenet", grid_size: int = 7, fine_tune_last_block: bool = False,
                 allow_random_fallback: bool = False, pool: str = "max"):
        super().__init__("vgg16", weights, grid_size, fine_tune_last_block, allow_random_fallback, pool)


def build_encoder(cfg, *, allow_random_fallback: Optional[bool] = None) -> GridEncoder:
    """Build the encoder from an ``EncoderConfig`` (``encoder.name``: see ``model.specs``)."""
    spec = encoder_spec(cfg.name)
    fallback = cfg.allow_random_fallback if allow_random_fallback is None else allow_random_fallback
    if spec.name == "vgg16":
        return VGG16Encoder(cfg.weights, cfg.grid_size, cfg.fine_tune_last_block, fallback, cfg.pool)
    tap = resolve_tap(spec.name, cfg.grid_size, cfg.image_size)  # a map coarser than the grid stops here
    if spec.family == "vgg":
        encoder: GridEncoder = VGGEncoder(spec.name, cfg.weights, cfg.grid_size, cfg.fine_tune_last_block,
                                          fallback, cfg.pool)
    else:
        from .backbones import backbone_class

        encoder = backbone_class(spec.family)(spec, tap, cfg.weights, cfg.grid_size, cfg.fine_tune_last_block,
                                         fallback, cfg.pool)
    LOG.debug("encoder %s: %s map %dx%d -> grid %d", spec.name, encoder.tap.label, native_map_size(cfg),
              native_map_size(cfg), cfg.grid_size)
    return encoder
