"""Encoder weights: torchvision's and timm's ImageNet weights, a weights file by path, and the messages
that say how to get them offline. The networks themselves are built here too (random or loaded), so
each encoder class only slices what it taps.

A weights file may be a full state_dict as torchvision or timm save it (``resnet50-0676ba61.pth``:
the classifier ``fc.*`` is ignored), the backbone alone, or such a state_dict in safetensors (an
exported model folder's copy), optionally wrapped as ``{"state_dict": ...}``.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
import torch.nn as nn
import torchvision

from .specs import EncoderSpec


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but could not be obtained (offline)."""


class EncoderMismatchError(ValueError):
    """Encoder weights other than those a decoder was trained on: its annotations would mean nothing to it."""


class EncoderUnavailableError(WeightsUnavailableError):
    """The library an encoder is built with is not installed (timm, for xception)."""


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a .pth/.pt (``torch.load(weights_only=True)``) or .safetensors file."""
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
    return state


def timm_module():
    """``timm``, or a one-line message saying how to install it."""
    try:
        import timm
    except ImportError:
        raise EncoderUnavailableError('encoder.name=xception needs timm: pip install "show-attend[timm]"') from None
    return timm


def torchvision_weights(spec: EncoderSpec) -> Any:
    """The torchvision ``Weights`` enum member of ``spec`` (``VGG16_Weights.IMAGENET1K_V1``)."""
    return torchvision.models.get_weight(spec.weights)


def weights_file_name(spec: EncoderSpec) -> str:
    """The file torchvision or timm downloads for ``encoder.weights: imagenet``."""
    if spec.library == "torchvision":
        return torchvision_weights(spec).url.rsplit("/", 1)[-1]
    return "xception-43020ad28.pth"  # timm's legacy_xception.tf_in1k url (pretrained_cfg)


def offline_message(spec: EncoderSpec, reason: str) -> str:
    """How to run ``spec`` without downloading its ImageNet weights (VGG16's own wording elsewhere)."""
    file = weights_file_name(spec)
    if spec.library == "torchvision":
        where = (f"torchvision's {file} ({torchvision_weights(spec).url}), or any state_dict with the keys of "
                 f"torchvision.models.{spec.builder}()")
        cache = f"  * copy {file} into the torch hub cache ({Path(torch.hub.get_dir()) / 'checkpoints'}), or\n"
    else:
        where = (f"timm's {spec.builder}.{spec.weights} weights ({file}, or model.safetensors of the Hugging Face "
                 f"repository timm/{spec.builder}.{spec.weights}), any state_dict with the keys of "
                 f"timm.create_model('{spec.builder}')")
        cache = ""
    return (f"Could not get the ImageNet {spec.title} weights ({reason}). This machine seems to be offline. Either\n"
            f"  * pass a local weights file: --set encoder.weights=FILE, {where}, or\n"
            f"{cache}"
            "  * train with random features: --set encoder.weights=none (captions will be poor).")


def normalization(spec: EncoderSpec) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the input, as the encoder's ImageNet weights declare it (no download)."""
    if spec.library == "torchvision":
        preset = torchvision_weights(spec).transforms()
        return tuple(float(v) for v in preset.mean), tuple(float(v) for v in preset.std)
    cfg = timm_module().models.get_pretrained_cfg(f"{spec.builder}.{spec.weights}")
    return tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)


def _random_network(spec: EncoderSpec) -> nn.Module:
    """Random weights. A ResNet's residual branches start at zero (torchvision's ``zero_init_residual``):
    otherwise each of ResNet-152's 50 blocks adds its variance and the random features (~1e8) overflow
    the float16 cache; with it, every block starts as the identity and the features stay finite."""
    if spec.family == "resnet":
        return getattr(torchvision.models, spec.builder)(weights=None, zero_init_residual=True)
    if spec.library == "torchvision":
        return getattr(torchvision.models, spec.builder)(weights=None)
    return timm_module().create_model(spec.builder, pretrained=False)


def _imagenet_network(spec: EncoderSpec) -> nn.Module:
    if spec.library == "torchvision":
        return getattr(torchvision.models, spec.builder)(weights=torchvision_weights(spec))
    return timm_module().create_model(spec.builder, pretrained=True)


def build_network(spec: EncoderSpec, weights: str, allow_random_fallback: bool, used: tuple[str, ...],
                  ignored: tuple[str, ...]) -> tuple[nn.Module, str]:
    """The whole torchvision/timm network of ``spec`` with the asked weights, and a label for them.

    ``used``: module prefixes the encoder keeps (a file must hold all their tensors); ``ignored``:
    prefixes of a file's tensors that are dropped (the classifier). Anything else is an error.
    """
    if weights == "imagenet":
        try:
            return _imagenet_network(spec), "imagenet"
        except EncoderUnavailableError:
            raise
        except Exception as exc:  # URLError, OSError, hash mismatch, the Hub unreachable ...
            message = offline_message(spec, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            if not allow_random_fallback:
                raise WeightsUnavailableError(message) from exc
            warnings.warn(message + "\nFalling back to RANDOM encoder weights: captions will be poor.", stacklevel=4)
            return _random_network(spec), "none (imagenet unavailable)"
    network = _random_network(spec)
    if weights in ("none", "", "random"):
        return network, "none"
    state = {k: v for k, v in load_state_file(weights).items() if not k.startswith(ignored)}
    try:
        missing, unexpected = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        detail = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ValueError(f"{weights}: not a {spec.title} state_dict ({detail})") from None
    needed = [k for k in missing if k.startswith(used) and not k.startswith(ignored)]
    if needed or unexpected:
        raise ValueError(f"{weights}: not a {spec.title} state_dict (missing {needed[:4]}, unexpected {unexpected[:4]})")
    return network, str(weights)


def native_state(spec: EncoderSpec, weights: str | Path) -> dict[str, torch.Tensor]:
    """A weights file's tensors under the library's own names (what an exported folder stores), the
    classifier dropped."""
    if spec.family == "vgg":
        state = load_state_file(weights)
        return {(k if k.startswith("features.") else f"features.{k}"): v for k, v in state.items()
                if not k.startswith("classifier.")}
    return {k: v for k, v in load_state_file(weights).items() if not k.startswith("fc.")}


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """What identifies a network's weights whatever file holds them: the sha256 of its floating-point
    tensors rounded to float16, in name order. A float32 original and its float16 copy (an exported
    folder's) agree; a separately trained network (torchvision's VGG16 against the Oxford one) does not."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not tensor.is_floating_point():  # BatchNorm's num_batches_tracked
            continue
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())  # (numel,) as bytes
    return h.hexdigest()


def check_fingerprint(found: str, expected: Optional[str], title: str, weights: str, model: str) -> None:
    """Refuse to run a decoder on encoder weights other than those it was trained on (``expected``:
    the fingerprint the model recorded; None for models written before fingerprints: not checked)."""
    if expected and found != expected:
        raise EncoderMismatchError(
            f"{model} was trained on other {title} weights than {weights!r} (fingerprint {found[:12]}..., "
            f"the model's {expected[:12]}...): a decoder reads only the features of the encoder it was trained "
            "with, so its captions would be nonsense. Use the weights its model card names (an exported folder "
            "with encoder.safetensors needs none).")
