"""Typed configuration: dataclasses loaded from YAML, overridable with ``--set key=value``.

Every section is a dataclass; an unknown key or a value of the wrong type raises
:class:`ConfigError` with the list of valid keys, so a typo never passes silently.

    cfg = load_config("configs/shapes_demo.yaml", overrides=["model.attention_dim=256"])

A file may name others as its ``_base_`` and hold only the values it changes (see
:func:`read_yaml_config`); ``name`` defaults to the file's stem. The allowed values of a setting
are its field's ``Literal`` type. The configs shipped in ``show_attend/configs`` load by name:
``load_config("flickr8k_vgg16_7x7")``.
"""
from __future__ import annotations

from .compare import RESUME_MAY_CHANGE, REUSE_MAY_CHANGE, changed_settings, refuse_changes
from .files import (BASE_KEY, available_configs, config_dir, load_config, read_yaml_config, resolve_config_path,
                    save_config)
from .parse import ConfigError, config_from_dict, parse_override
from .schema import (Config, DataConfig, DecodeConfig, EncoderConfig, ModelConfig, OptimConfig, SyntheticConfig,
                     TrainConfig, check_choice, choices, weights_label)

__all__ = ["RESUME_MAY_CHANGE", "REUSE_MAY_CHANGE", "changed_settings", "refuse_changes", "BASE_KEY", "Config", "ConfigError", "DataConfig", "DecodeConfig", "EncoderConfig", "ModelConfig",
           "OptimConfig", "SyntheticConfig", "TrainConfig", "available_configs", "check_choice", "choices",
           "config_dir", "config_from_dict", "load_config", "parse_override", "read_yaml_config",
           "resolve_config_path", "save_config", "weights_label"]
