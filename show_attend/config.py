"""Typed configuration: dataclasses loaded from YAML, overridable with ``--set key=value``.

Every section is a dataclass; an unknown key or a value of the wrong type raises
:class:`ConfigError` with the list of valid keys, so a typo never passes silently.

    cfg = load_config("configs/shapes_demo.yaml", overrides=["model.attention_dim=256"])

A file may name another as its ``_base_`` and hold only the values it changes (see
:func:`read_yaml_config`).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass
class SyntheticConfig:
    """The generated shapes dataset (the embedded default, no downloads)."""

    num_train: int = 1500
    num_val: int = 150
    num_test: int = 150
    image_size: int = 112
    seed: int = 0
    texture: str = "flat"  # flat | grating: the shapes' surface (see data/synthetic.py)


@dataclass
class DataConfig:
    # synthetic: generated into `root`; flickr8k: original, Kaggle or Karpathy layout found under
    # `root` (detected); karpathy: `karpathy_json` plus `image_dir` (Flickr8k/30k/COCO).
    source: str = "synthetic"
    root: str = "data/shapes"
    karpathy_json: Optional[str] = None
    image_dir: Optional[str] = None
    # Where the prepared dataset (splits, tokenised captions, vocabulary) and feature caches go.
    cache_dir: str = "cache/shapes"
    min_word_count: int = 5
    max_caption_length: int = 50  # training captions are clipped to this many words (refs never)
    use_feature_cache: bool = True  # train from cached features (False: run the CNN every step)
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class EncoderConfig:
    name: str = "vgg16"
    # "imagenet" (torchvision's VGG16_Weights.IMAGENET1K_V1), "none" (random), or a state_dict path.
    weights: str = "imagenet"
    # Offline and "imagenet" asked for: stop (False) or fall back to random init with a warning.
    allow_random_fallback: bool = False
    grid_size: int = 7  # 7 -> 7x7x512 (VGG's pool5 at 224 px); 14 -> the paper's 14x14x512
    image_size: int = 224
    resize_mode: str = "squash"  # squash: resize to image_size^2; center_crop: resize short side, crop
    # How block5_conv3 (S/16 x S/16) is reduced to the grid when it is finer: max (VGG's own pool5) or
    # avg (each cell the mean of the cells it covers; not in the paper, see encoder.py).
    pool: str = "max"
    fine_tune_last_block: bool = False
    batch_size: int = 32  # feature extraction batch size


@dataclass
class ModelConfig:
    """The decoder (Xu et al. 2015, sec. 3.1.2 and 4.2)."""

    embed_dim: int = 512  # m
    hidden_dim: int = 512  # n
    attention_dim: int = 512  # size of the f_att MLP's hidden layer
    dropout: float = 0.5
    gate: str = "scalar"  # scalar (paper: beta_t in R), vector (beta_t in R^D), none
    deep_output: bool = True  # L_o(E y + L_h h + L_z z); False: a plain linear layer on h_t
    deep_output_activation: str = "none"  # none (the paper's equation) or tanh (authors' code)
    init_mlp_layers: int = 1  # depth of f_init,h and f_init,c
    annotation_norm: str = "none"  # none | layernorm | map: rescale the a_i (not in the paper; see decoder)
    init_state: str = "mean"  # mean: h_0, c_0 = f_init(mean_i a_i) (paper); zeros: f_init(0) (ablation)
    attention_location: bool = False  # a learned term per grid cell in f_att (location-aware; not in the paper)


@dataclass
class OptimConfig:
    lr: float = 4e-4
    weight_decay: float = 0.0
    encoder_lr: float = 1e-5  # for the fine-tuned block
    grad_clip: float = 5.0  # max global gradient norm
    scheduler: str = "plateau"  # plateau | cosine | step | none
    step_size: int = 8  # for the step scheduler (epochs)
    gamma: float = 0.5  # decay factor for step / plateau
    plateau_patience: int = 2  # epochs without improvement before decaying (plateau)
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    alpha_c: float = 1.0  # lambda of the doubly stochastic attention regularisation
    label_smoothing: float = 0.0
    amp: str = "none"  # none | bf16 (autocast on CUDA)
    val_every: int = 1  # decode and score the validation split every N epochs
    val_metric: str = "CIDEr"  # selects the best checkpoint and drives early stopping
    val_beam_size: int = 1
    val_max_images: int = 0  # 0: the whole validation split
    early_stop_patience: int = 0  # validations without improvement before stopping; 0: never
    log_every: int = 50  # steps between TensorBoard scalar writes
    max_steps: int = 0  # stop after this many steps (0: no limit), for smoke tests
    # xe: cross-entropy with teacher forcing (the paper); scst: self-critical training with a
    # CIDEr-D reward (Rennie et al. 2017), usually started from an xe run with init_from.
    objective: str = "xe"
    init_from: Optional[str] = None  # a checkpoint whose weights (not optimizer) start this run
    scst_samples: int = 5  # captions sampled per image
    scst_baseline: str = "mean"  # mean (of the image's other samples) | greedy (the test-time caption)
    scst_dropout: bool = False  # sample with dropout on; off (default) samples the test-time policy


@dataclass
class DecodeConfig:
    beam_size: int = 3
    max_length: int = 20
    length_penalty: float = 0.0  # GNMT-style alpha; 0 keeps raw log-probabilities
    suppress_unk: bool = True


@dataclass
class Config:
    name: str = "shapes_demo"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES = {
    "data.source": ("synthetic", "flickr8k", "karpathy"),
    "data.synthetic.texture": ("flat", "grating"),
    "encoder.name": ("vgg16",),
    "encoder.grid_size": (7, 14),
    "encoder.resize_mode": ("squash", "center_crop"),
    "encoder.pool": ("max", "avg"),
    "model.gate": ("scalar", "vector", "none"),
    "model.deep_output_activation": ("none", "tanh"),
    "model.annotation_norm": ("none", "layernorm", "map"),
    "model.init_state": ("mean", "zeros"),
    "optim.scheduler": ("plateau", "cosine", "step", "none"),
    "train.amp": ("none", "bf16"),
    "train.objective": ("xe", "scst"),
    "train.scst_baseline": ("greedy", "mean"),
    "train.val_metric": ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr",
                         "loss"),
}


def check_choice(key: str, value: Any, name: Optional[str] = None) -> None:
    """Raise ValueError unless ``value`` is one of ``CHOICES[key]``.

    For the modules, which are usable without a Config: one list of the valid values per setting,
    here, checked the same way whether it comes from a YAML file or a constructor argument.
    """
    if value not in CHOICES[key]:
        raise ValueError(f"{name or key.rsplit('.', 1)[-1]} must be one of {list(CHOICES[key])}, got {value!r}")


def _check_value(path: str, value: Any, tp: Any) -> Any:
    """Return ``value`` coerced to ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_value(path, value, args[0])
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_check_value(f"{path}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {tp}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + str(k) for k in unknown)}; "
            f"valid keys{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(names)}"
        )
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        tp = hints[name]
        path = prefix + name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name] or {}, path + ".")
        else:
            value = _check_value(path, data[name], tp)
            if path in CHOICES and value not in CHOICES[path]:
                raise ConfigError(f"{path}: {value!r} is not one of {list(CHOICES[path])}")
            kwargs[name] = value
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.attention_dim=256"`` -> ``("model.attention_dim", 256)`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def config_from_dict(data: dict[str, Any], overrides: Optional[list[str]] = None) -> Config:
    tree = dataclasses.asdict(Config())
    _merge(tree, data or {}, "")
    for text in overrides or []:
        key, value = parse_override(text)
        _check_key_exists(key)
        _set_dotted(tree, key, value)
    return _build(Config, tree)


def _merge(base: dict[str, Any], new: dict[str, Any], prefix: str) -> None:
    if not isinstance(new, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {new!r}")
    for key, value in new.items():
        if key not in base:
            valid = ", ".join(base)
            where = f" in {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"unknown key {prefix}{key}; valid keys{where}: {valid}")
        if isinstance(base[key], dict):
            _merge(base[key], value or {}, f"{prefix}{key}.")
        else:
            base[key] = value


def _check_key_exists(key: str) -> None:
    node: Any = dataclasses.asdict(Config())
    prefix = ""
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            valid = ", ".join(node) if isinstance(node, dict) else "(none: not a section)"
            where = f" in {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"unknown key {key}; valid keys{where}: {valid}")
        node = node[part]
        prefix += part + "."


BASE_KEY = "_base_"


def _deep_update(tree: dict[str, Any], new: dict[str, Any]) -> None:
    """Write ``new`` over ``tree`` section by section (a child file over its base)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _deep_update(tree[key], value)
        else:
            tree[key] = value


def read_yaml_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a config file, with its ``_base_`` chain resolved (not yet validated).

    A file may start from another: ``_base_: flickr8k_vgg16_7x7.yaml`` (relative to the file) loads
    that one first and writes this file's keys over it, section by section, as mmdetection's
    ``_base_`` does; so a config holds only what it changes.
    """
    path = Path(path)
    if not path.is_file():
        where = f" (the {BASE_KEY} of {_seen[-1]})" if _seen else ""
        raise ConfigError(f"config file not found: {path}{where}")
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigError(f"{BASE_KEY} cycle: {chain}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: {BASE_KEY} must be one file name, got {base!r}")
    tree = read_yaml_config(path.parent / base, (*_seen, resolved))
    _deep_update(tree, data)
    return tree


def load_config(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML file (or the defaults when ``path`` is None) and apply ``key=value`` overrides."""
    data = read_yaml_config(path) if path is not None else {}
    return config_from_dict(data, overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
