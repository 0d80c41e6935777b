"""VGG16 encoder: grids, weight files, the offline ImageNet message."""
import pytest
import torch
import torchvision

from show_attend.config import load_config
from show_attend.model.encoder import VGG16Encoder, WeightsUnavailableError, build_encoder, load_vgg16_features_state

from conftest import SHARED_WEIGHTS, offline


@pytest.mark.parametrize("grid, size", [(7, 224), (14, 224), (7, 112)])
def test_grid_shapes(grid, size):
    enc = VGG16Encoder("none", grid_size=grid).eval()
    with torch.no_grad():
        a = enc(torch.randn(2, 3, size, size))
    assert a.shape == (2, grid * grid, 512)
    assert (a >= 0).all()  # after block5_conv3's ReLU


def test_7x7_is_2x2_max_pool_of_14x14():
    enc = VGG16Encoder("none", grid_size=14).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fmap14 = enc.feature_map(x)  # (1, 512, 14, 14)
        enc.grid_size = 7
        a7 = enc(x)  # (1, 49, 512)
    pooled = torch.nn.functional.max_pool2d(fmap14, 2).flatten(2).transpose(1, 2)
    assert torch.allclose(a7, pooled)


def test_avg_pool_option():
    enc = VGG16Encoder("none", grid_size=14).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fmap14 = enc.feature_map(x)  # (1, 512, 14, 14)
        enc.grid_size, enc.pool = 7, "avg"
        a7 = enc(x)  # (1, 49, 512)
    pooled = torch.nn.functional.avg_pool2d(fmap14, 2).flatten(2).transpose(1, 2)
    assert torch.allclose(a7, pooled)
    cfg = load_config(overrides=["encoder.weights=none", "encoder.pool=avg"])
    assert build_encoder(cfg.encoder).pool == "avg"
    with pytest.raises(ValueError, match="pool"):
        VGG16Encoder("none", pool="mean")


def test_weight_files_full_and_features_only(tmp_path):
    full = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(full, tmp_path / "full.pth")
    features_only = {k: v for k, v in full.items() if k.startswith("features.")}
    torch.save(features_only, tmp_path / "features.pth")
    for name in ("full.pth", "features.pth"):
        enc = VGG16Encoder(str(tmp_path / name))
        assert torch.equal(enc.cnn[28].weight, full["features.28.weight"])
    assert not any(k.startswith("classifier") for k in load_vgg16_features_state(tmp_path / "full.pth"))


def test_bad_weight_file(tmp_path):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a VGG16 state_dict"):
        VGG16Encoder(str(tmp_path / "bad.pth"))
    with pytest.raises(FileNotFoundError):
        VGG16Encoder(str(tmp_path / "missing.pth"))


def test_offline_imagenet_stops_with_instructions_or_falls_back(monkeypatch):
    monkeypatch.setattr(torchvision.models, "vgg16", offline(torchvision.models.vgg16))
    cfg = load_config(None, ["encoder.weights=imagenet"])
    with pytest.raises(WeightsUnavailableError, match="encoder.weights=/path/to/vgg16.pth"):
        build_encoder(cfg.encoder)
    with pytest.warns(UserWarning, match="RANDOM encoder weights"):
        enc = build_encoder(cfg.encoder, allow_random_fallback=True)
    assert enc.weights_label.startswith("none")


def test_fine_tuning_unfreezes_block5_only():
    enc = VGG16Encoder("none", fine_tune_last_block=True)
    trainable = {n.split(".")[1] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"24", "26", "28"}
    assert not any(p.requires_grad for p in VGG16Encoder("none").parameters())


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="shared ImageNet weights not present")
def test_shared_imagenet_weights_load():
    enc = VGG16Encoder(str(SHARED_WEIGHTS))
    assert enc.weights_label == str(SHARED_WEIGHTS)
