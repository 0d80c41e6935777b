"""The encoders' specifications: one registry of what each CNN taps, how big its map is, where its
cells look. Plain Python (no torch), so the geometry, the cache keys and the tables read it freely.

    name        library      builder / weights                   taps (map at S px, D channels)
    vgg16       torchvision  vgg16, VGG16_Weights.IMAGENET1K_V1   block5_conv3: S//16, 512
    vgg19       torchvision  vgg19, VGG19_Weights.IMAGENET1K_V1   block5_conv4: S//16, 512
    resnet50    torchvision  resnet50, ResNet50_Weights.IMAGENET1K_V1    layer4: ceil(S/32), 2048;
    resnet101   torchvision  resnet101, ResNet101_Weights.IMAGENET1K_V1  layer3: ceil(S/16), 1024
    resnet152   torchvision  resnet152, ResNet152_Weights.IMAGENET1K_V1
    xception    timm         legacy_xception (tf_in1k)            act4 (after conv4): 2048, stride 32

Which tap gives the grid (:func:`resolve_tap`): the deepest tap whose map at ``encoder.image_size``
is at least ``grid_size`` x ``grid_size``; a finer map is pooled to the grid (``encoder.pool``), as
VGG16's 14x14 block5_conv3 is pooled to 7x7. At 224 px a ResNet's grid 7 is layer4 (7x7x2048) and
its grid 14 layer3 (14x14x1024); at 448 px grid 14 is layer4. Xception's only tap is its last map:
7x7 at 224 px, 10x10 at 299 px (its weights' own input size; pooled to 7x7 with overlapping
windows, as ``adaptive_max_pool2d`` does), 14x14 at 448 px. A map coarser than the grid is an
error (VGG16 alone keeps its old behaviour there, so its features and caches stay as they were).

Geometry of a tap (in input pixels, pixel i spanning [i, i + 1)): map cell j looks at a window
centred at ``first_centre + stride * j``, ``receptive_field`` pixels wide (the theoretical RF,
before the image border clips it). VGG's 'same' convolutions and 2x2 pools put the centres at
``stride * (j + 0.5)``: the cells tile the image. A ResNet's stride-2 convolutions and pool centre
cell j on input pixel ``stride * j``, half a cell up and left of the tile; legacy Xception's
unpadded stem shifts its centres by 3.5 px. The numbers are checked against the real networks'
layers in ``tests/model/test_encoders.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["vgg", "resnet", "xception"]


@dataclass(frozen=True)
class Tap:
    """One feature map an encoder can expose as the annotation grid."""

    layer: str  # the layer's name in the network (torchvision / timm module names)
    label: str  # its name in the literature (block5_conv3, layer4, ...)
    channels: int  # D
    stride: int  # input pixels per map cell
    first_centre: float  # centre of map cell 0's receptive field, in input pixels
    receptive_field: int  # theoretical receptive field side, in input pixels
    last_block: tuple[str, ...]  # module names that encoder.fine_tune_last_block unfreezes


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    title: str  # for people: "VGG16", "ResNet-50"
    family: Family
    library: Literal["torchvision", "timm"]
    builder: str  # torchvision.models.<builder>, or the timm model name
    weights: str  # torchvision: the Weights enum member ("VGG16_Weights.IMAGENET1K_V1"); timm: the pretrained tag
    taps: tuple[Tap, ...]  # deepest first

    def map_size(self, tap: Tap, image_size: int) -> int:
        """The side of ``tap``'s map for an ``image_size`` x ``image_size`` input (as the network computes it)."""
        s = int(image_size)
        if self.family == "vgg":  # 2x2 pools, floor
            return s // tap.stride
        if self.family == "resnet":  # padded stride-2 convolutions and pool: ceil at each halving
            return -(-s // tap.stride)
        m = (s - 1) // 2 - 2  # xception: unpadded 3x3 stride-2 conv1, unpadded 3x3 conv2
        for _ in range(4):  # blocks 1, 2, 3, 12: padded 3x3 stride-2 pools
            m = -(-m // 2)
        return m


def _vgg(name: str, title: str, conv: str, layer: int, block5: int, rf: int) -> EncoderSpec:
    last = tuple(str(i) for i in range(block5, layer + 1))
    tap = Tap(f"features.{layer}", conv, 512, 16, 8.0, rf, last)
    return EncoderSpec(name, title, "vgg", "torchvision", name, f"{title}_Weights.IMAGENET1K_V1", (tap,))


def _resnet(depth: int, rf3: int, rf4: int) -> EncoderSpec:
    name = f"resnet{depth}"
    taps = (Tap("layer4", "layer4", 2048, 32, 0.5, rf4, ("layer4",)),
            Tap("layer3", "layer3", 1024, 16, 0.5, rf3, ("layer3",)))
    return EncoderSpec(name, f"ResNet-{depth}", "resnet", "torchvision", name,
                       f"ResNet{depth}_Weights.IMAGENET1K_V1", taps)


def encoder_specs() -> dict[str, EncoderSpec]:
    """Every encoder ``encoder.name`` may name, by that name."""
    specs = [
        # features[29] is block5_conv3's ReLU, features[24] block5_conv1 (VGG16); VGG19: [35], [28]
        _vgg("vgg16", "VGG16", "block5_conv3", 29, 24, 196),
        _vgg("vgg19", "VGG19", "block5_conv4", 35, 28, 252),
        _resnet(50, 267, 427),
        _resnet(101, 811, 971),
        _resnet(152, 1291, 1451),
        EncoderSpec("xception", "Xception", "xception", "timm", "legacy_xception", "tf_in1k",
                    (Tap("act4", "conv4", 2048, 32, 3.5, 1083,
                         ("block12", "conv3", "bn3", "conv4", "bn4")),)),  # the exit flow
    ]
    return {s.name: s for s in specs}


def encoder_spec(name: str) -> EncoderSpec:
    specs = encoder_specs()
    if name not in specs:
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(specs)}")
    return specs[name]


def resolve_tap(name: str, grid_size: int, image_size: int) -> Tap:
    """The tap that gives a ``grid_size`` grid at ``image_size`` px: the deepest whose map is at least as fine."""
    spec = encoder_spec(name)
    for tap in spec.taps:
        if spec.map_size(tap, image_size) >= grid_size:
            return tap
    if spec.name == "vgg16":
        return spec.taps[0]  # the old behaviour: a coarser block5_conv3 map is resampled to the grid
    finest = spec.taps[-1]
    need = next(s for s in range(image_size, 64 * grid_size * finest.stride) if spec.map_size(finest, s) >= grid_size)
    raise ValueError(f"encoder {name} at image_size {image_size} gives at most a "
                     f"{spec.map_size(finest, image_size)}x{spec.map_size(finest, image_size)} map ({finest.label}), "
                     f"coarser than grid_size {grid_size}: set encoder.image_size to at least {need}, "
                     "or a smaller encoder.grid_size")


def feature_dim(encoder_cfg) -> int:
    """D, the size of one annotation vector, for an ``EncoderConfig`` (what the decoder is built for)."""
    return resolve_tap(encoder_cfg.name, encoder_cfg.grid_size, encoder_cfg.image_size).channels


def native_map_size(encoder_cfg) -> int:
    """The side of the tapped map before it is pooled to the grid."""
    spec = encoder_spec(encoder_cfg.name)
    return spec.map_size(resolve_tap(spec.name, encoder_cfg.grid_size, encoder_cfg.image_size), encoder_cfg.image_size)


def describe(encoder_cfg) -> str:
    """``7x7x512 block5_conv3 grid of VGG16`` (what a model card or report calls the annotations)."""
    spec = encoder_spec(encoder_cfg.name)
    tap = resolve_tap(spec.name, encoder_cfg.grid_size, encoder_cfg.image_size)
    g = encoder_cfg.grid_size
    return f"{g}x{g}x{tap.channels} {tap.label} grid of {spec.title}"
