from pathlib import Path

import pytest

from show_attend.config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.encoder.grid_size in (7, 14)


def test_grid_configs():
    assert load_config(REPO / "configs/flickr8k_vgg16_7x7.yaml").encoder.grid_size == 7
    assert load_config(REPO / "configs/flickr8k_vgg16_14x14.yaml").encoder.grid_size == 14


def test_override_types_and_values():
    cfg = load_config(None, ["model.attention_dim=256", "optim.lr=1e-3", "train.amp=bf16",
                             "encoder.weights=/tmp/w.pth", "data.image_dir=null"])
    assert cfg.model.attention_dim == 256
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.train.amp == "bf16"
    assert cfg.encoder.weights == "/tmp/w.pth"
    assert cfg.data.image_dir is None


def test_typo_in_override_names_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.atention_dim=256"])
    assert "model.atention_dim" in str(err.value)
    assert "attention_dim" in str(err.value) and "hidden_dim" in str(err.value)


def test_typo_in_yaml_names_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "train.epocs" in str(err.value) and "epochs" in str(err.value)


def test_unknown_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer: {epochs: 3}\n")
    with pytest.raises(ConfigError, match="valid keys: name, seed"):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ("model.attention_dim=abc", "expected an integer"),
    ("model.dropout=[1]", "expected a number"),
    ("data.use_feature_cache=1", "expected true/false"),
    ("encoder.grid_size=9", "not one of"),
    ("model.gate=sometimes", "not one of"),
    ("model=3", "expected a mapping"),
    ("novalue", "key=value"),
])
def test_wrong_values_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("does/not/exist.yaml")
