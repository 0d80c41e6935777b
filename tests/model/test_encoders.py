"""Every encoder option (random weights): the tapped map, its size and geometry against the real
network, weights files by path, the offline messages, fine-tuning, cache keys, extraction and a
training step through the real commands."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

from show_attend.config import load_config
from show_attend.data.features import cache_key
from show_attend.model.encoder import EncoderUnavailableError, WeightsUnavailableError, build_encoder
from show_attend.model.geometry import adaptive_windows, encoder_geometry, upsample_attention
from show_attend.model.specs import encoder_spec, feature_dim, resolve_tap

from conftest import offline, tiny_config

timm = pytest.importorskip("timm")  # the [timm] extra (in [dev]): xception

NAMES = ["vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "xception"]


def encoder_cfg(name: str, *overrides: str):
    return load_config(None, [f"encoder.name={name}", "encoder.weights=none", *overrides]).encoder


def walk_receptive_field(module: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Compose the (kernel, stride, padding) of the convolutions and pools the forward pass calls on
    its main path (a branch that reads an earlier, larger map, e.g. a downsample shortcut, is skipped):
    the stride, map cell 0's receptive-field centre (input pixels, pixel i spanning [i, i + 1)) and
    the receptive field's side, from the network itself."""
    state = {"size": images.shape[-1], "start": 0.5, "jump": 1.0, "rf": 1.0}

    def hook(m, inputs, out):
        if inputs[0].shape[-1] != state["size"]:
            return
        k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
        state["start"] += state["jump"] * ((k - 1) / 2 - p)
        state["rf"] += (k - 1) * state["jump"]
        state["jump"] *= s
        state["size"] = out.shape[-1]

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    try:
        with torch.no_grad():
            fmap = module._map(images)  # (1, D, n, n)
    finally:
        for h in handles:
            h.remove()
    return dict(state, map=fmap.shape[-1], channels=fmap.shape[1])


# -------------------------------------------------------------------------- specs against the networks
@pytest.mark.parametrize("name, grid, size, label, dim, native", [
    ("vgg16", 7, 112, "block5_conv3", 512, 7), ("vgg19", 7, 112, "block5_conv4", 512, 7),
    ("resnet50", 7, 224, "layer4", 2048, 7), ("resnet50", 14, 224, "layer3", 1024, 14),
    ("resnet101", 7, 112, "layer3", 1024, 7), ("resnet152", 7, 112, "layer3", 1024, 7),
    ("xception", 7, 224, "conv4", 2048, 7), ("xception", 7, 299, "conv4", 2048, 10)])
def test_each_encoder_taps_the_map_its_spec_says(name, grid, size, label, dim, native):
    cfg = encoder_cfg(name, f"encoder.grid_size={grid}", f"encoder.image_size={size}")
    torch.manual_seed(0)
    enc = build_encoder(cfg).eval()
    tap = resolve_tap(name, grid, size)
    assert (enc.tap, tap.label, tap.channels, enc.feature_dim, feature_dim(cfg)) == (tap, label, dim, dim, dim)
    x = torch.randn(1, 3, size, size)
    walked = walk_receptive_field(enc, x)
    assert walked["map"] == native == encoder_spec(name).map_size(tap, size)
    assert walked["channels"] == dim
    assert (walked["jump"], walked["start"], walked["rf"]) == (tap.stride, tap.first_centre, tap.receptive_field)
    with torch.no_grad():
        a = enc(x)
    assert a.shape == (1, grid * grid, dim)  # (B, L, D)
    # the geometry: map cell j looks at first_centre + stride * j; a pooled cell at its window's mean
    centres = [walked["start"] + walked["jump"] * (lo + hi - 1) / 2 for lo, hi in adaptive_windows(native, grid)]
    assert np.allclose(np.asarray(encoder_geometry(cfg).centres) * size, centres)


@pytest.mark.parametrize("name", ["vgg19", "resnet50", "xception"])
def test_map_sizes_follow_the_networks_at_odd_sizes(name):
    """The spec's map size is the network's at sizes that are no multiple of the stride (VGG16's own
    arithmetic is VGG19's; ResNet-101/152 have ResNet-50's stages, deeper)."""
    from show_attend.model.backbones import backbone_class
    from show_attend.model.encoder import VGGEncoder

    spec = encoder_spec(name)
    for tap in spec.taps:
        enc = VGGEncoder(name, "none") if spec.family == "vgg" else backbone_class(spec.family)(spec, tap, "none")
        for size in (64, 100, 131):
            with torch.no_grad():
                n = enc._map(torch.zeros(1, 3, size, size)).shape[-1]  # (1, D, n, n)
            assert n == spec.map_size(tap, size), (name, tap.label, size)


def test_vgg_cells_tile_the_image_and_resnet_cells_sit_half_a_cell_up_left():
    vgg = encoder_geometry(encoder_cfg("vgg16", "encoder.image_size=224"))
    assert vgg.uniform and np.allclose(vgg.centres, (np.arange(7) + 0.5) / 7)
    res = encoder_geometry(encoder_cfg("resnet50", "encoder.image_size=224"))
    assert not res.uniform and np.allclose(np.asarray(res.centres) * 224, 32 * np.arange(7) + 0.5)
    assert np.allclose(res.cells(np.asarray(res.centres)), np.arange(7))
    edges = res.edges()
    assert edges[0] == 0 and edges[-1] == 1 and np.all(np.diff(edges) > 0)
    # a heatmap of one cell peaks on that cell's receptive-field centre, not on the tile's centre
    alpha = np.zeros((7, 7))
    alpha[3, 5] = 1.0
    up = upsample_attention(alpha, 224, 224, geometry=res)
    r, c = np.unravel_index(int(np.argmax(up)), up.shape)
    assert (r, c) == (3 * 32, 5 * 32)  # pixel 32j holds the centre 32j + 0.5
    tiled = np.unravel_index(int(np.argmax(upsample_attention(alpha, 224, 224))), (224, 224))
    assert tiled != (r, c)


def test_grounding_uses_the_encoder_geometry():
    from show_attend.evaluation.grounding import score_sample

    geo = encoder_geometry(encoder_cfg("resnet50", "encoder.image_size=224"))
    alpha = np.zeros((1, 49))
    alpha[0, 2 * 7 + 4] = 1.0  # row 2, column 4: its receptive field is centred at (128.5, 64.5)
    objects = [{"color": "red", "shape": "circle", "size": "small", "box": [112, 48, 136, 72]}]
    with_geo, _ = score_sample(["circle"], alpha, objects, 7, 224, geometry=geo)
    tiled, _ = score_sample(["circle"], alpha, objects, 7, 224)  # tile centre (144, 80): outside the box
    assert with_geo[0].hit and not tiled[0].hit
    assert with_geo[0].mass > tiled[0].mass


def test_a_map_coarser_than_the_grid_is_refused_with_the_size_needed():
    with pytest.raises(ValueError, match="image_size to at least"):
        feature_dim(encoder_cfg("xception", "encoder.grid_size=14", "encoder.image_size=224"))
    assert resolve_tap("resnet50", 14, 448).label == "layer4"  # the deepest map as fine as the grid


# -------------------------------------------------------------------------- normalisation, weights, offline
def test_each_encoder_is_normalised_as_its_weights_want():
    from show_attend.data.transforms import ImageTransform

    white = torch.ones(3)
    vgg = ImageTransform(32, encoder="vgg16")._normalization
    assert vgg == ImageTransform(32, encoder="resnet50")._normalization  # torchvision's ImageNet mean/std
    mean, std = ImageTransform(32, encoder="xception")._normalization  # timm's: [-1, 1]
    assert torch.allclose((white - torch.tensor(mean)) / torch.tensor(std), torch.ones(3))


def test_weight_files_by_path_load_exactly_their_tensors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    full = torchvision.models.resnet50(weights=None).state_dict()  # as torchvision saves resnet50-0676ba61.pth
    torch.save(full, tmp_path / "resnet50.pth")
    save_file({k: v for k, v in full.items() if not k.startswith("fc.")}, str(tmp_path / "backbone.safetensors"))
    for file in ("resnet50.pth", "backbone.safetensors"):
        enc = build_encoder(encoder_cfg("resnet50", f"encoder.weights={tmp_path / file}"))
        own = enc.cnn.state_dict()
        assert own and all(torch.equal(v, full[k]) for k, v in own.items()), file
        assert enc.weights_label == str(tmp_path / file)
    xc = timm.create_model("legacy_xception", pretrained=False).state_dict()  # timm's layout, fc included
    save_file(xc, str(tmp_path / "xception.safetensors"))
    enc = build_encoder(encoder_cfg("xception", f"encoder.weights={tmp_path / 'xception.safetensors'}"))
    assert all(torch.equal(v, xc[k]) for k, v in enc.cnn.state_dict().items())
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a ResNet-50 state_dict"):
        build_encoder(encoder_cfg("resnet50", f"encoder.weights={tmp_path / 'bad.pth'}"))


def test_xception_weights_file_by_path_extracts_with_its_own_normalisation(tmp_path):
    """A timm-format Xception state_dict (random values) saved to a file, loaded by path through ``show-attend
    extract`` at 299 px: the cache equals a manual forward of the same network on the photo scaled to [-1, 1]
    (mean = std = 0.5, Keras' x/127.5 - 1), not on the VGG-normalised one; its map is 10x10, max-pooled to 7x7."""
    from PIL import Image

    from show_attend.cli import extract_main
    from show_attend.data.features import FeatureStore, feature_path
    from show_attend.data.prepare import PreparedDataset

    torch.manual_seed(3)
    net = timm.create_model("legacy_xception", pretrained=False)
    for m in net.modules():  # BatchNorm statistics of [-1, 1] noise, so that the input's scale shows in the
        if isinstance(m, nn.BatchNorm2d):  # features (with timm's initial ones a random net forgets its input)
            m.momentum = None
    with torch.no_grad():
        net.train().forward_features(torch.rand(4, 3, 96, 96) * 2 - 1)
    net.eval()
    torch.save(net.state_dict(), tmp_path / "xception_random.pth")  # timm's names, fc.* included
    overrides = [o for o in _overrides(tmp_path, "xception", 299) if not o.startswith("encoder.weights")]
    overrides += [f"encoder.weights={tmp_path / 'xception_random.pth'}", "data.synthetic.num_train=2"]
    assert extract_main([x for o in overrides for x in ("--set", o)] + ["--splits", "train"]) == 0
    cfg = load_config(None, overrides)
    store = FeatureStore(feature_path(cfg.data.cache_dir, cfg.encoder, "train"))
    assert store.array.shape == (2, 49, 2048) and store.index["weights_loaded"] == str(tmp_path / "xception_random.pth")
    dataset = PreparedDataset.load(cfg.data.cache_dir)
    photos = [dataset.image_dir / im.file_name for im in dataset.split("train")]
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((299, 299), Image.BICUBIC)))
                          for p in photos]).permute(0, 3, 1, 2).float() / 255.0  # (2, 3, 299, 299) in [0, 1]
    with torch.no_grad():
        fmap = net.forward_features((pixels - 0.5) / 0.5)  # (2, 2048, 10, 10)
        vgg_mean, vgg_std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        vgg_map = net.forward_features((pixels - vgg_mean) / vgg_std)
    assert fmap.shape[-1] == 10
    expected = nn.functional.adaptive_max_pool2d(fmap, 7).flatten(2).transpose(1, 2)  # (2, 49, 2048)
    wrong = nn.functional.adaptive_max_pool2d(vgg_map, 7).flatten(2).transpose(1, 2)
    cached = torch.from_numpy(np.stack([store.array[store.row_of[im.image_id]] for im in dataset.split("train")])
                              .astype(np.float32))
    scale = expected.abs().max()
    assert (cached - expected).abs().max() < 2e-3 * scale  # float16 storage
    assert (wrong - expected).abs().max() > 5e-2 * scale  # the normalisation matters at this scale


def test_offline_imagenet_names_the_file_to_fetch(monkeypatch):
    monkeypatch.setattr(torchvision.models, "resnet101", offline(torchvision.models.resnet101))
    cfg = encoder_cfg("resnet101", "encoder.weights=imagenet")
    with pytest.raises(WeightsUnavailableError, match="resnet101-63fe2227.pth") as err:
        build_encoder(cfg)
    assert "--set encoder.weights=FILE" in str(err.value)
    with pytest.warns(UserWarning, match="RANDOM encoder weights"):
        assert build_encoder(cfg, allow_random_fallback=True).weights_label.startswith("none")

    def offline_timm(name, pretrained=False, **kw):
        if pretrained:
            raise ConnectionError("no route to huggingface.co")
        return timm.models.create_model(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline_timm)
    with pytest.raises(WeightsUnavailableError, match="xception-43020ad28.pth"):
        build_encoder(encoder_cfg("xception", "encoder.weights=imagenet", "encoder.image_size=299"))


def test_xception_without_timm_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from show_attend.cli import extract_main

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(EncoderUnavailableError, match=r'pip install "show-attend\[timm\]"'):
        build_encoder(encoder_cfg("xception"))
    overrides = [f"data.root={tmp_path}/d", f"data.cache_dir={tmp_path}/c", "data.synthetic.num_train=2",
                 "data.synthetic.num_val=1", "data.synthetic.num_test=1", "encoder.name=xception", "encoder.weights=none",
                 "encoder.image_size=224"]
    assert extract_main([x for o in overrides for x in ("--set", o)]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("error:")]  # (besides the progress bars)
    assert len(said) == 1 and 'pip install "show-attend[timm]"' in said[0] and "Traceback" not in err


# -------------------------------------------------------------------------- fine-tuning
@pytest.mark.parametrize("name, size, block", [
    ("vgg19", 112, {"28", "30", "32", "34"}), ("resnet50", 112, {"layer3"}),
    ("xception", 224, {"block12", "conv3", "bn3", "conv4", "bn4"})])
def test_fine_tuning_unfreezes_exactly_the_last_block(name, size, block):
    enc = build_encoder(encoder_cfg(name, f"encoder.image_size={size}", "encoder.fine_tune_last_block=true"))
    trainable = {n.split(".")[1] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == block
    assert not any(p.requires_grad for p in build_encoder(encoder_cfg(name, f"encoder.image_size={size}")).parameters())
    state = enc.block5_state()
    assert state and {k.split(".")[1] for k in state} == block
    enc.load_block5_state(state)
    with pytest.raises(ValueError, match="unexpected keys"):
        enc.load_block5_state({"cnn.conv1.weight": torch.zeros(1)})
    enc.train()  # BatchNorm keeps its statistics: the frozen layers stay frozen
    assert all(not m.training for m in enc.modules() if isinstance(m, nn.BatchNorm2d))


# -------------------------------------------------------------------------- cache keys
def test_cache_keys_keep_vgg16s_and_never_share_between_encoders():
    old = {(): "vgg16_imagenet_g7_s224_squash", ("encoder.grid_size=14",): "vgg16_imagenet_g14_s224_squash",
           ("encoder.pool=avg",): "vgg16_imagenet_g7_s224_squash_avgpool",
           ("encoder.pool=avg", "encoder.image_size=112"): "vgg16_imagenet_g7_s112_squash",
           ("encoder.precision=bf16", "encoder.channels_last=true"): "vgg16_imagenet_g7_s224_squash_bf16_cl",
           ("encoder.weights=none", "encoder.resize_mode=center_crop", "encoder.image_size=448",
            "encoder.grid_size=14", "encoder.pool=avg"): "vgg16_none_g14_s448_center_crop_avgpool"}
    for overrides, key in old.items():  # the keys of v0.x caches, which stay valid
        assert cache_key(load_config(None, list(overrides)).encoder) == key
    keys = {cache_key(encoder_cfg(n, "encoder.image_size=224", f"encoder.grid_size={g}"))
            for n in NAMES for g in (7, 14) if not (n == "xception" and g == 14)}
    assert len(keys) == 11
    assert cache_key(encoder_cfg("resnet50")) == "resnet50-layer4_none_g7_s224_squash"


# -------------------------------------------------------------------------- extract, train, restore
def _overrides(tmp_path, name: str, size: int) -> list[str]:
    return [f"data.root={tmp_path / 'shapes'}", f"data.cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'runs'}",
            "data.synthetic.num_train=8", "data.synthetic.num_val=2", "data.synthetic.num_test=2",
            f"encoder.name={name}", f"encoder.image_size={size}", "encoder.weights=none",
            "encoder.precision=fp32", "encoder.channels_last=false", "encoder.pool=max"]  # as conftest.TINY


@pytest.mark.parametrize("name, size", [("vgg19", 112), ("resnet50", 224), ("resnet101", 112), ("resnet152", 112),
                                        ("xception", 224)])
def test_extract_then_train_a_step(tmp_path, name, size):
    """``show-attend extract`` writes the cache (B, L, D as the spec says); one training step reads it; the
    checkpoint rebuilds a decoder of that D, which captions a photo. (vgg16: tests/training.)"""
    from show_attend.api import Captioner
    from show_attend.cli import extract_main
    from show_attend.data.features import FeatureStore, feature_path
    from show_attend.training.trainer import train

    overrides = _overrides(tmp_path, name, size)
    torch.manual_seed(0)
    assert extract_main([x for o in overrides for x in ("--set", o)] + ["--splits", "train", "val"]) == 0
    cfg = tiny_config(tmp_path, *overrides[3:], "name=one", "train.epochs=1", "train.max_steps=1",
                      "train.batch_size=4", "train.val_metric=loss")
    store = FeatureStore(feature_path(cfg.data.cache_dir, cfg.encoder, "train"))
    assert store.array.shape == (8, 49, feature_dim(cfg.encoder)) and store.index["feature_dim"] == feature_dim(cfg.encoder)
    run = train(cfg, progress=False)
    captioner = Captioner.from_checkpoint(run / "last.pt")
    assert captioner.decoder.feature_dim == feature_dim(cfg.encoder) and captioner.geometry.g == 7
    result = captioner.caption_with_attention(next((tmp_path / "shapes").rglob("*.png")), beam_size=1)[0]
    assert result.geometry is captioner.geometry
    if name == "resnet50":  # a 14x14 layer3 cache is never pooled into the 7x7 layer4 one
        grid14 = load_config(None, [*overrides, "encoder.grid_size=14"])
        assert extract_main([x for o in [*overrides, "encoder.grid_size=14"] for x in ("--set", o)]
                            + ["--splits", "train"]) == 0
        fine = FeatureStore(feature_path(grid14.data.cache_dir, grid14.encoder, "train"))
        assert fine.array.shape == (8, 196, 1024) and fine.path.parent != store.path.parent


def test_fine_tuning_a_resnet_trains_its_last_stage_and_the_checkpoint_restores_it(tmp_path):
    from show_attend.checkpoint import load_checkpoint, restore
    from show_attend.training.trainer import train

    cfg = tiny_config(tmp_path, *_overrides(tmp_path, "resnet50", 112)[3:], "name=ft", "train.epochs=1",
                      "train.max_steps=1", "train.batch_size=4", "train.val_metric=loss",
                      "encoder.fine_tune_last_block=true")
    run = train(cfg, progress=False)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["encoder_block5"] and all(k.startswith("cnn.layer3.") for k in ckpt["encoder_block5"])
    enc = restore(run / "last.pt").build_encoder()
    assert all(torch.equal(enc.state_dict()[k], v) for k, v in ckpt["encoder_block5"].items())


def test_export_a_resnet_with_its_weights_and_caption_the_same(tmp_path):
    """The exported folder holds the decoder (D = 1024) and the ResNet's weights under torchvision's names."""
    from show_attend.api import Captioner
    from show_attend.pretrained import ENCODER_FILE, export_checkpoints
    from show_attend.training.trainer import train

    torch.manual_seed(2)
    weights = tmp_path / "resnet50-random.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    overrides = [o for o in _overrides(tmp_path, "resnet50", 112)[3:] if not o.startswith("encoder.weights")]
    cfg = tiny_config(tmp_path, *overrides, f"encoder.weights={weights}", "name=exp", "train.epochs=1",
                      "train.max_steps=1", "train.batch_size=4", "train.val_metric=loss")
    run = train(cfg, progress=False)
    folder = export_checkpoints([run / "last.pt"], tmp_path / "model", with_encoder_weights=True)
    from safetensors.torch import load_file

    stored = load_file(str(folder / ENCODER_FILE))
    assert "layer4.2.conv3.weight" in stored and not any(k.startswith("fc.") for k in stored)
    photo = next((tmp_path / "shapes").rglob("*.png"))
    exported, original = Captioner.from_pretrained(folder), Captioner.from_checkpoint(run / "last.pt")
    assert exported.decoder.feature_dim == 1024
    assert exported.caption(photo, beam_size=1) == original.caption(photo, beam_size=1)
