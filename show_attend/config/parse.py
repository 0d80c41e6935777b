"""Building a :class:`Config` from plain data: type checks, unknown keys named with the valid ones,
``key=value`` overrides (values parsed as YAML)."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, Optional

import yaml

from .schema import Config


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""



def _check_value(path: str, value: Any, tp: Any) -> Any:
    """Return ``value`` coerced to ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool) or value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}")
        return value
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
            kwargs[name] = _check_value(path, data[name], tp)
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


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of a nested config dict."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
