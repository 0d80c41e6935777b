"""Feature cache: float16 memmap round trip, 50 KB per image at 7x7, DataLoader workers."""
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from show_attend.data.loaders import CaptionDataset, collate_captions
from show_attend.data.prepare import prepare_dataset
from show_attend.model.encoder import VGG16Encoder
from show_attend.data.features import FeatureStore, cache_key, ensure_features, extract_features
from show_attend.data.transforms import ImageTransform

from conftest import tiny_config


def test_round_trip(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (60 + i * 10, 50), (i * 40, 100, 200 - i * 30)).save(p)
        paths.append(p)
    enc = VGG16Encoder("none", grid_size=7).eval()
    tf = ImageTransform(112)
    store = extract_features(enc, paths, [f"im{i}" for i in range(5)], tmp_path / "c" / "train.npy", tf,
                             {"encoder": "vgg16"}, batch_size=2, progress=False)
    with torch.no_grad():
        expected = enc(torch.stack([tf(p) for p in paths]))  # (5, 49, 512)
    assert store.array.dtype == np.float16 and store.array.shape == (5, 49, 512)
    assert (tmp_path / "c" / "train.npy").stat().st_size - 128 == 5 * 50_176  # 50 KB per image
    reopened = FeatureStore(tmp_path / "c" / "train.npy")
    assert reopened.index["image_ids"][3] == "im3"
    assert torch.allclose(reopened.get("im3").float(), expected[3], rtol=1e-2, atol=1e-2)
    assert not list((tmp_path / "c").glob("*.tmp*"))


def test_workers_and_cache_reuse(tmp_path):
    cfg = tiny_config(tmp_path)
    ds = prepare_dataset(cfg.data, progress=False)
    store = ensure_features(ds, cfg.encoder, "train", progress=False)
    mtime = store.path.stat().st_mtime_ns
    assert ensure_features(ds, cfg.encoder, "train", progress=False).path.stat().st_mtime_ns == mtime
    data = CaptionDataset(ds, "train", ds.vocab, store=store)
    loader = DataLoader(data, batch_size=8, num_workers=2, collate_fn=collate_captions)
    n = 0
    for feats, caps in loader:
        assert feats.shape[1:] == (49, 512) and feats.dtype == torch.float16
        assert (caps[:, 0] == ds.vocab.start_id).all()
        n += len(feats)
    assert n == len(data) == 5 * 24


def test_changed_images_invalidate_the_cache(tmp_path):
    cfg = tiny_config(tmp_path, "data.synthetic.num_train=4")
    ds = prepare_dataset(cfg.data, progress=False)
    store = ensure_features(ds, cfg.encoder, "train", progress=False)
    first = store.get(ds.split("train")[0].image_id).clone()
    path = ds.image_dir / ds.split("train")[0].file_name
    Image.new("RGB", (112, 112), (255, 255, 255)).save(path)  # same name, new pixels
    again = ensure_features(ds, cfg.encoder, "train", progress=False)
    assert not torch.equal(again.get(ds.split("train")[0].image_id), first)


def test_coarse_grid_is_pooled_from_a_finer_cache(tmp_path):
    """A 7x7 cache derived from a 14x14 one equals the 7x7 the encoder computes, bit for bit."""
    weights = tmp_path / "vgg16_random.pth"
    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in VGG16Encoder("none").cnn.state_dict().items()}, weights)
    common = ("data.synthetic.num_train=5", "encoder.image_size=224", f"encoder.weights={weights}")
    cfg14 = tiny_config(tmp_path, *common, "encoder.grid_size=14")
    ds = prepare_dataset(cfg14.data, progress=False)
    fine = ensure_features(ds, cfg14.encoder, "train", progress=False)
    assert fine.array.shape == (5, 196, 512)

    cfg7 = tiny_config(tmp_path, *common, "encoder.grid_size=7")
    pooled = ensure_features(ds, cfg7.encoder, "train", progress=False)  # no CNN run: pooled
    assert pooled.index["pooled_from"] == str(fine.path) and pooled.index["grid_size"] == 7
    assert pooled.array.shape == (5, 49, 512)

    images = ds.split("train")
    direct = extract_features(VGG16Encoder(str(weights), grid_size=7),
                              [ds.image_dir / im.file_name for im in images], [im.image_id for im in images],
                              tmp_path / "direct" / "train.npy", ImageTransform(224), {}, progress=False)
    assert np.array_equal(np.asarray(direct.array), np.asarray(pooled.array))

    # encoder.pool=avg: its own cache, averaged from the same 14x14 one, equal to the encoder's average
    # within float16 rounding; the 14x14 grid itself is not pooled, so its cache is shared.
    cfg7avg = tiny_config(tmp_path, *common, "encoder.grid_size=7", "encoder.pool=avg")
    assert cache_key(cfg7avg.encoder) != cache_key(cfg7.encoder)
    assert cache_key(tiny_config(tmp_path, *common, "encoder.grid_size=14", "encoder.pool=avg").encoder) \
        == cache_key(cfg14.encoder)
    averaged = ensure_features(ds, cfg7avg.encoder, "train", progress=False)
    assert averaged.index["pooled_from"] == str(fine.path) and averaged.index["pool"] == "avg"
    direct_avg = extract_features(VGG16Encoder(str(weights), grid_size=7, pool="avg"),
                                  [ds.image_dir / im.file_name for im in images],
                                  [im.image_id for im in images], tmp_path / "direct_avg" / "train.npy",
                                  ImageTransform(224), {}, progress=False)
    a, b = np.asarray(direct_avg.array, np.float32), np.asarray(averaged.array, np.float32)
    assert np.allclose(a, b, rtol=2e-3, atol=1e-3)
    assert not np.allclose(a, np.asarray(pooled.array, np.float32), rtol=2e-3, atol=1e-3)  # not the max


def test_the_cache_check_reads_no_image_unless_a_file_changed(tmp_path, monkeypatch):
    """At every start only names, sizes and times are compared (cheap on COCO); content is read
    only when they differ, so a re-copied dataset (new times, same bytes) keeps its cache."""
    import os

    import pytest

    from show_attend.data import features

    cfg = tiny_config(tmp_path)
    ds = prepare_dataset(cfg.data, progress=False)
    first = ensure_features(ds, cfg.encoder, "val", progress=False)

    def no_reading(paths):
        raise AssertionError("image content was read")

    monkeypatch.setattr(features, "images_fingerprint", no_reading)
    assert ensure_features(ds, cfg.encoder, "val", progress=False).path == first.path  # stamps match
    monkeypatch.undo()
    for im in ds.split("val"):  # a copy: every file gets a new modification time
        p = ds.image_dir / im.file_name
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: pytest.fail("re-extracted a copy"))
    ensure_features(ds, cfg.encoder, "val", progress=False)  # content compared: the same, kept
    monkeypatch.setattr(features, "images_fingerprint", no_reading)
    ensure_features(ds, cfg.encoder, "val", progress=False)  # and the new stamps remembered


def test_bf16_and_channels_last_extraction_cache_under_their_own_keys(tmp_path):
    """Faster arithmetic never reuses (or overwrites) the fp32 cache: the features differ slightly."""
    cfg = tiny_config(tmp_path)
    ds = prepare_dataset(cfg.data, progress=False)
    torch.manual_seed(0)  # the same random VGG16 weights for both extractions
    fp32 = ensure_features(ds, cfg.encoder, "val", progress=False)
    fast = tiny_config(tmp_path, "encoder.precision=bf16", "encoder.channels_last=true").encoder
    assert cache_key(fast) == cache_key(cfg.encoder) + "_bf16_cl"
    torch.manual_seed(0)
    store = ensure_features(ds, fast, "val", progress=False)
    assert store.path != fp32.path and store.index["precision"] == "bf16" and store.index["channels_last"]
    a, b = fp32.array.astype(np.float32), store.array.astype(np.float32)
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.03  # bf16 within a few percent (random weights)


def test_train_amp_bf16_runs_on_the_cpu(tmp_path):
    from show_attend.training.trainer import train

    run = train(tiny_config(tmp_path, "name=bf16", "train.epochs=1", "train.amp=bf16", "train.max_steps=2"),
                progress=False)
    from show_attend.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 2
