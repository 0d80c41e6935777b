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


def _write(path, text):
    path.write_text(text)
    return path


def test_base_file_is_loaded_first_and_written_over(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\nmodel:\n  attention_dim: 128\n  dropout: 0.3\noptim:\n  lr: 1.0e-3\n")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "mid.yaml", "_base_: ../base.yaml\nname: mid\nmodel:\n  dropout: 0.1\n")
    child = _write(tmp_path / "sub" / "child.yaml", "_base_: mid.yaml\nname: child\noptim:\n  lr: 2.0e-3\n")
    cfg = load_config(child, ["model.attention_dim=64"])
    assert cfg.name == "child"
    assert cfg.model.dropout == 0.1           # from mid, over base
    assert cfg.optim.lr == 2.0e-3             # from child, over base
    assert cfg.model.attention_dim == 64      # the override, over all files
    assert load_config(tmp_path / "sub" / "mid.yaml").model.attention_dim == 128  # kept from base


def test_base_errors_name_the_file(tmp_path):
    _write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", "_base_: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"not found: .*missing.yaml \(the _base_ of .*c.yaml\)"):
        load_config(tmp_path / "c.yaml")
    _write(tmp_path / "d.yaml", "_base_: c.yaml\nmodel:\n  atention_dim: 3\n")
    _write(tmp_path / "c.yaml", "name: c\n")
    with pytest.raises(ConfigError, match="valid keys in model"):
        load_config(tmp_path / "d.yaml")
    _write(tmp_path / "e.yaml", "_base_: {model: c.yaml}\n")
    with pytest.raises(ConfigError, match="a file name or a list of them"):
        load_config(tmp_path / "e.yaml")


def test_base_list_merges_bases_in_order_and_refuses_a_key_set_twice(tmp_path):
    """mmdetection's rule: _base_ may be a list; the bases may not both set a key; the file wins."""
    _write(tmp_path / "smooth.yaml", "train:\n  label_smoothing: 0.1\n")
    _write(tmp_path / "penalty.yaml", "decode:\n  length_penalty: 1.5\nencoder:\n  resize_mode: center_crop\n")
    _write(tmp_path / "both.yaml", "_base_: [shapes_demo, smooth.yaml, penalty.yaml]\nmodel:\n  embed_dim: 32\n")
    cfg = load_config(tmp_path / "both.yaml")
    assert (cfg.train.label_smoothing, cfg.decode.length_penalty, cfg.encoder.resize_mode) == (0.1, 1.5, "center_crop")
    assert cfg.model.embed_dim == 32 and cfg.model.hidden_dim == 256  # the file over its bases
    assert cfg.data.source == "synthetic" and cfg.train.epochs == 10  # the shipped config, by name
    assert cfg.name == "both"  # a base's name is not inherited: the file's stem
    _write(tmp_path / "grid.yaml", "encoder:\n  grid_size: 14\n")
    _write(tmp_path / "grid2.yaml", "encoder:\n  grid_size: 7\n")
    _write(tmp_path / "twice.yaml", "_base_: [grid.yaml, grid2.yaml]\n")
    with pytest.raises(ConfigError, match="encoder.grid_size is set by two bases, grid.yaml and grid2.yaml"):
        load_config(tmp_path / "twice.yaml")


def test_name_defaults_to_the_file_stem_and_configs_load_by_name(tmp_path):
    _write(tmp_path / "my_run.yaml", "train:\n  epochs: 3\n")
    assert load_config(tmp_path / "my_run.yaml").name == "my_run"
    _write(tmp_path / "named.yaml", "name: other\n")
    assert load_config(tmp_path / "named.yaml").name == "other"
    for name in ("flickr8k_vgg16_7x7_ln", "flickr8k_vgg16_7x7_ln.yaml"):
        assert load_config(name).name == "flickr8k_vgg16_7x7_ln"
    with pytest.raises(ConfigError, match="shipped configs \\(by name\\): .*shapes_demo"):
        load_config("no_such_config")


def _flat(tree, prefix=""):
    """A nested config dict as {dotted key: value}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _changed(a, b):
    """Dotted keys whose values differ between two config dicts."""
    flat_b = _flat(b)
    return sorted(key for key, value in _flat(a).items() if flat_b[key] != value)


@pytest.mark.parametrize("child, base, switches", [
    ("flickr8k_vgg16_14x14", "flickr8k_vgg16_7x7", ["encoder.grid_size", "name"]),
    ("flickr8k_vgg16_7x7_lr8e-4", "flickr8k_vgg16_7x7", ["name", "optim.lr", "train.epochs"]),
    ("flickr8k_vgg16_7x7_lr8e-4_scst", "flickr8k_vgg16_7x7_scst", ["name", "train.epochs", "train.init_from"]),
    ("flickr8k_vgg16_7x7_ls_scst", "flickr8k_vgg16_7x7_scst", ["name", "train.init_from"]),
    ("flickr8k_vgg16_7x7_ln", "flickr8k_vgg16_7x7", ["model.annotation_norm", "name"]),
    ("flickr8k_vgg16_7x7_ln_scst", "flickr8k_vgg16_7x7_scst", ["model.annotation_norm", "name", "train.init_from"]),
    ("flickr8k_vgg16_7x7_ln_seed1", "flickr8k_vgg16_7x7_ln", ["name", "seed"]),
    ("flickr8k_vgg16_7x7_ln_sup", "flickr8k_vgg16_7x7_ln", ["data.entities_dir", "name", "train.attention_supervision"]),
    ("flickr8k_vgg16_7x7_ln_seed1_scst", "flickr8k_vgg16_7x7_ln_scst", ["name", "seed", "train.init_from"]),
    ("shapes_grounding", "shapes_demo", ["encoder.allow_random_fallback", "encoder.channels_last",
                                         "encoder.precision", "name"]),
])
def test_shipped_configs_differ_from_their_base_only_in_their_switches(child, base, switches):
    a = load_config(REPO / f"configs/{base}.yaml").to_dict()
    b = load_config(REPO / f"configs/{child}.yaml").to_dict()
    assert _changed(a, b) == switches


def test_modules_check_the_same_choices_as_the_config():
    """One list of valid values per setting: a module built without a Config rejects what YAML would."""
    from show_attend.config import check_choice, choices
    from show_attend.model.decoder import AttentionDecoder
    from show_attend.data.transforms import ImageTransform

    check_choice("model.gate", "vector")
    with pytest.raises(ValueError, match=r"gate must be one of \['scalar', 'vector', 'none'\], got 'Scalar'"):
        AttentionDecoder(12, gate="Scalar")
    with pytest.raises(ValueError, match="deep_output_activation must be one of"):
        AttentionDecoder(12, deep_output_activation="relu")
    with pytest.raises(ValueError, match=r"resize_mode must be one of \['squash', 'center_crop'\]"):
        ImageTransform(224, "crop")
    with pytest.raises(ConfigError, match=r"'crop' is not one of \['squash', 'center_crop'\]"):
        load_config(None, ["encoder.resize_mode=crop"])
    assert choices("model.gate") == ("scalar", "vector", "none") and choices("model.embed_dim") is None
    # the allowed values live on the fields: every Literal setting is refused outside its values
    for key in _flat(Config().to_dict()):
        if choices(key):
            with pytest.raises(ConfigError, match="is not one of"):
                load_config(None, [f"{key}=not_a_choice"])


def test_val_metric_choices_are_the_metric_names():
    from show_attend.config import choices
    from show_attend.metrics.names import TABLE_METRICS

    assert choices("train.val_metric") == (*TABLE_METRICS, "loss")
