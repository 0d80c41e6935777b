"""The encoders beyond VGG: torchvision's ResNets (layer4 or layer3) and timm's Xception (its last map).

Each keeps the library's own module names under ``cnn.`` (``cnn.layer4.2.conv3.weight``,
``cnn.block12.rep.1.conv_dw.weight``), so a torchvision or timm state_dict loads by name and a
checkpoint's last-block state names the layers it holds.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from .encoder import GridEncoder
from .specs import EncoderSpec, Tap
from .weights import build_network

_RESNET_STEM = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class ResNetEncoder(GridEncoder):
    """torchvision's ResNet-50/101/152 up to ``layer4`` (stride 32, D = 2048) or ``layer3`` (stride 16,
    D = 1024), pooled to the grid. forward: (B, 3, S, S) -> (B, L, D)."""

    def __init__(self, spec: EncoderSpec, tap: Tap, weights: str = "imagenet", grid_size: int = 7,
                 fine_tune_last_block: bool = False, allow_random_fallback: bool = False, pool: str = "max"):
        super().__init__(spec, tap, grid_size, pool)
        kept = _RESNET_STEM[: _RESNET_STEM.index(tap.layer) + 1]
        network, self.weights_label = build_network(spec, weights, allow_random_fallback,
                                                    used=tuple(f"{m}." for m in kept), ignored=("fc.",))
        # conv1 .. the tapped stage, under torchvision's names: (B, 3, S, S) -> (B, D, S/stride, S/stride)
        self.cnn = nn.Sequential(OrderedDict((name, getattr(network, name)) for name in kept))
        self.set_fine_tuning(fine_tune_last_block)


class XceptionEncoder(GridEncoder):
    """timm's ``legacy_xception`` (Chollet 2017, the Keras model) up to its last map (conv4 + BN + ReLU,
    stride 32, D = 2048), pooled to the grid. forward: (B, 3, S, S) -> (B, L, 2048)."""

    def __init__(self, spec: EncoderSpec, tap: Tap, weights: str = "imagenet", grid_size: int = 7,
                 fine_tune_last_block: bool = False, allow_random_fallback: bool = False, pool: str = "max"):
        super().__init__(spec, tap, grid_size, pool)
        network, self.weights_label = build_network(spec, weights, allow_random_fallback, used=("",),
                                                    ignored=("fc.",))
        network.reset_classifier(0)  # no pooling, no fc: forward_features ends at act4
        self.cnn = network
        self.set_fine_tuning(fine_tune_last_block)

    def _map(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn.forward_features(images)  # (B, 2048, n, n), n = 10 at 299 px, 7 at 224 px


def backbone_class(family: str) -> type[GridEncoder]:
    """The encoder class of an ``EncoderSpec.family`` beyond VGG."""
    return {"resnet": ResNetEncoder, "xception": XceptionEncoder}[family]
