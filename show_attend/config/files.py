"""Config files: YAML with mmdetection-style ``_base_`` chains, the shipped configs by name, saving."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from ..utils.files import atomic_write_text
from .parse import ConfigError, config_from_dict, flat
from .schema import Config

BASE_KEY = "_base_"


def config_dir() -> Path:
    """The folder of the configs shipped with the package (``show_attend/configs``)."""
    return Path(__file__).resolve().parent.parent / "configs"


def available_configs() -> list[str]:
    """Names of the shipped configs (``show-attend train --config NAME``)."""
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path, relative_to: Optional[Path] = None) -> Path:
    """A config file from a path, or from a shipped config's name (``flickr8k_vgg16_7x7``,
    with or without ``.yaml``). A path (relative to ``relative_to`` if given) wins over a name."""
    path = Path(name_or_path)
    candidates = [relative_to / path] if relative_to is not None else [path]
    if len(path.parts) == 1:  # a bare name may be a shipped config
        candidates.append(config_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file not found: {candidates[0]}; shipped configs (by name): "
                      + ", ".join(available_configs()))


def _deep_update(tree: dict[str, Any], new: dict[str, Any]) -> None:
    """Write ``new`` over ``tree`` section by section (a child file over its base)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _deep_update(tree[key], value)
        else:
            tree[key] = value


def read_yaml_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a config file, with its ``_base_`` chain resolved (not yet validated).

    A file may start from others, as mmdetection's ``_base_`` does: ``_base_: flickr8k_vgg16_7x7.yaml``
    or a list ``_base_: [a.yaml, b.yaml]`` (relative to the file, or a shipped config's name). The
    bases are merged first (two bases may not set the same key: that would make their order
    matter silently), then this file's keys are written over them, section by section; so a config
    holds only what it changes. ``name`` is not inherited: it is the file's own ``name``, else
    the file's stem.
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
    bases = data.pop(BASE_KEY, None)
    if isinstance(bases, str):
        bases = [bases]
    if bases is not None and (not isinstance(bases, list) or not all(isinstance(b, str) for b in bases)):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of them, got {bases!r}")
    tree: dict[str, Any] = {}
    owner: dict[str, str] = {}  # dotted key -> the base that set it
    for base in bases or []:
        try:
            base_path = resolve_config_path(base, relative_to=path.parent)
        except ConfigError:
            base_path = path.parent / base  # reported below with the chain
        base_tree = read_yaml_config(base_path, (*_seen, resolved))
        base_tree.pop("name", None)
        for key in flat(base_tree):
            if key in owner:
                raise ConfigError(f"{path}: {key} is set by two bases, {owner[key]} and {base}; "
                                  "set it in one of them, or in this file")
            owner[key] = base
        _deep_update(tree, base_tree)
    _deep_update(tree, data)
    tree.setdefault("name", path.stem)
    return tree


def load_config(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML file or a shipped config by name (or the defaults when ``path`` is None) and
    apply ``key=value`` overrides."""
    data = read_yaml_config(resolve_config_path(path)) if path is not None else {}
    return config_from_dict(data, overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))

