"""The portable model folder: export, move, load on a "new machine", caption: the same captions."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend import Captioner
from show_attend.checkpoint import load_checkpoint, save_checkpoint
from show_attend.model.ensemble import DecoderEnsemble


@pytest.fixture()
def portable_run(trained_run, tmp_path):
    """The tiny run's checkpoints, recorded as trained on a VGG16 weights *file* (seeded random)."""
    import torchvision

    run_dir, _ = trained_run
    torch.manual_seed(0)
    weights = tmp_path / "vgg16_random.pth"
    torch.save(torchvision.models.vgg16(weights=None).features.state_dict(), weights)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run_dir / name)
        ckpt["config"]["encoder"]["weights"] = str(weights)
        save_checkpoint(run / name, ckpt)
    (run / "eval_test").mkdir()
    (run / "eval_test" / "metrics.json").write_text(json.dumps({"metrics": {"Bleu_4": 0.25, "CIDEr": 0.5}}))
    photos = []
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (20, 20, 220)]):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.full((70, 90, 3), color, dtype=np.uint8)).save(photos[-1])
    return run, weights, photos


def test_export_move_load_caption_gives_the_checkpoints_captions(portable_run, tmp_path, capsys):
    from show_attend.cli import caption_main, export_main

    run, weights, photos = portable_run
    expected = Captioner.from_checkpoint(run / "best.pt", device="cpu").caption(photos, beam_size=2)
    assert export_main([str(run / "best.pt"), "--out", str(tmp_path / "model"), "--with-encoder-weights"]) == 0
    moved = shutil.move(str(tmp_path / "model"), str(tmp_path / "elsewhere" / "model"))
    shutil.rmtree(run)
    weights.unlink()  # the new machine has neither the run nor the weights file
    names = sorted(p.name for p in (tmp_path / "elsewhere" / "model").iterdir())
    assert names == ["README.md", "decoder-0.safetensors", "encoder.safetensors", "model.json", "vocab.json"]
    captioner = Captioner.from_pretrained(moved, device="cpu")
    assert captioner.caption(photos, beam_size=2) == expected
    card = (tmp_path / "elsewhere" / "model" / "README.md").read_text()
    assert "## Metrics of the run" in card and "25.00" in card and "Intended use and limits" in card
    # the one-line command, with the attention when asked
    capsys.readouterr()
    assert caption_main([str(photos[0]), "--model", moved, "--json", "--attention", "--beam-size", "2"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["caption"] == expected[0] and len(row["attention"]) == len(row["words"]) == len(row["beta"])
    assert row["grid"] == [7, 7] and all(len(a) == 49 for a in row["attention"])


def test_an_ensemble_exports_and_loads_as_one(portable_run, tmp_path):
    run, weights, photos = portable_run
    members = [run / "best.pt", run / "last.pt"]
    direct = Captioner.from_checkpoints(members, device="cpu")
    assert isinstance(direct.decoder, DecoderEnsemble) and "mean" in direct.attention_note
    from show_attend.pretrained import export_checkpoints

    folder = export_checkpoints(members, tmp_path / "ens")
    info = json.loads((folder / "model.json").read_text())
    assert len(info["members"]) == 2 and "mean" in info["ensemble"]
    assert info["encoder"]["weights_sha256"] and "weights_file" not in info["encoder"]
    loaded = Captioner.from_pretrained(folder, device="cpu", encoder_weights=str(weights))
    assert isinstance(loaded.decoder, DecoderEnsemble)
    assert loaded.caption(photos, beam_size=2) == direct.caption(photos, beam_size=2)
    # save_pretrained writes the same format back
    again = Captioner.from_pretrained(loaded.save_pretrained(tmp_path / "again"), encoder_weights=str(weights))
    assert again.caption(photos[:1]) == loaded.caption(photos[:1])


def test_a_folder_without_its_encoder_weights_says_what_to_pass(portable_run, tmp_path):
    from show_attend.pretrained import export_checkpoints

    run, weights, _ = portable_run
    folder = export_checkpoints([run / "best.pt"], tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="pass encoder_weights=/path/to/that/file"):
        Captioner.from_pretrained(folder)
    other = tmp_path / "other.pth"
    torch.save({"0.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not the VGG16 weights this model was trained on"):
        Captioner.from_pretrained(folder, encoder_weights=str(other))
    assert all(p.suffix in (".json", ".safetensors", ".md") for p in folder.iterdir())  # no pickle anywhere


def test_a_hub_id_offline_asks_for_a_folder():
    with pytest.raises(FileNotFoundError, match="pass the path of an exported model folder"):
        Captioner.from_pretrained("someone/no-such-model")


def test_a_run_on_random_features_is_not_exported(trained_run, tmp_path, capsys):
    from show_attend.cli import export_main

    run_dir, _ = trained_run  # encoder.weights=none
    assert export_main([str(run_dir), "--out", str(tmp_path / "m")]) == 2
    assert "random VGG16 features" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_float16_folder_is_half_the_size_and_captions_as_the_checkpoint(portable_run, tmp_path):
    from show_attend.pretrained import export_checkpoints

    run, weights, photos = portable_run
    full = export_checkpoints([run / "best.pt"], tmp_path / "f32", with_encoder_weights=True)
    half = export_checkpoints([run / "best.pt"], tmp_path / "f16", with_encoder_weights=True, dtype=torch.float16)
    for name in ("decoder-0.safetensors", "encoder.safetensors"):
        ratio = (half / name).stat().st_size / (full / name).stat().st_size
        assert 0.49 < ratio < 0.51, (name, ratio)
    info = json.loads((half / "model.json").read_text())
    assert info["dtype"] == "float16" and info["data"]["source"] == "synthetic"
    # the float16 copy of the weights has the float32 original's fingerprint, so it is accepted
    assert info["encoder"]["weights_fingerprint"] == json.loads((full / "model.json").read_text())["encoder"][
        "weights_fingerprint"]
    expected = Captioner.from_checkpoint(run / "best.pt", device="cpu").caption(photos, beam_size=2)
    loaded = Captioner.from_pretrained(half, device="cpu")
    assert next(loaded.decoder.parameters()).dtype == torch.float32  # stored in half, computed in float
    assert loaded.caption(photos, beam_size=2) == expected


def test_other_encoder_weights_are_refused_by_folder_and_checkpoint(portable_run, tmp_path):
    """A decoder trained on one VGG16's features must not run on another VGG16's (torchvision's against the
    Oxford one): same network, same keys, different training."""
    import torchvision
    from safetensors.torch import load_file, save_file

    from show_attend.model.weights import EncoderMismatchError
    from show_attend.pretrained import export_checkpoints

    run, weights, photos = portable_run
    folder = export_checkpoints([run / "best.pt"], tmp_path / "m", with_encoder_weights=True)
    torch.manual_seed(123)  # another training of the same network
    other = torchvision.models.vgg16(weights=None).features.state_dict()
    keys = load_file(str(folder / "encoder.safetensors"))
    save_file({k: other[k.split(".", 1)[1]].contiguous() for k in keys}, str(folder / "encoder.safetensors"))
    with pytest.raises(EncoderMismatchError, match="trained on other VGG16 weights"):
        Captioner.from_pretrained(folder)
    # a checkpoint that records its encoder's fingerprint (every run trained from now on) refuses too
    ckpt = load_checkpoint(run / "best.pt")
    ckpt["encoder_fingerprint"] = json.loads((folder / "model.json").read_text())["encoder"]["weights_fingerprint"]
    save_checkpoint(run / "best.pt", ckpt)
    assert Captioner.from_checkpoint(run / "best.pt").caption(photos[0])  # its own weights: fine
    torch.save(other, tmp_path / "other.pth")
    with pytest.raises(EncoderMismatchError, match="model card names"):
        Captioner.from_checkpoint(run / "best.pt", encoder_weights=str(tmp_path / "other.pth"))


def test_training_records_the_encoder_fingerprint(trained_run, tmp_path):
    from show_attend.checkpoint import restore
    from show_attend.training.trainer import Trainer

    run_dir, _ = trained_run  # random weights (encoder.weights none): nothing to rebuild, nothing recorded
    model = restore(run_dir / "best.pt")
    assert model.payload["encoder_fingerprint"] is None and model.build_encoder() is not None
    import torchvision

    weights = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16(weights=None).features.state_dict(), weights)
    model.cfg.encoder.weights = str(weights)
    model.cfg.output_dir = str(tmp_path / "runs")
    payload = Trainer(model.cfg, progress=False).checkpoint_payload()
    model.cfg.encoder.weights = str(weights)
    assert payload["encoder_fingerprint"] == model.build_encoder().weights_fingerprint()


def test_the_card_is_written_from_the_runs_own_data_and_command(portable_run, tmp_path):
    from show_attend.pretrained import export_checkpoints

    run, weights, _ = portable_run
    card = (export_checkpoints([run / "best.pt"], tmp_path / "m") / "README.md").read_text()
    assert "synthetic shapes" in card and "on a photo its caption is meaningless" in card
    assert "Flickr8k" not in card
    # rerunning "how it was made" trains on the same weights file, not on random or downloaded features
    assert "--set encoder.weights=/path/to/vgg16_random.pth" in card


def test_an_exported_folder_is_evaluated_like_its_checkpoint(portable_run, tmp_path):
    from show_attend.evaluation.evaluate import evaluate_checkpoint
    from show_attend.pretrained import export_checkpoints

    run, weights, _ = portable_run
    ckpt = load_checkpoint(run / "best.pt")
    data_root = ckpt["config"]["data"]["root"]
    folder = export_checkpoints([run / "best.pt"], tmp_path / "m", with_encoder_weights=True)
    kwargs = dict(split="val", beam_size=2, tokenizer="python", progress=False)
    direct = evaluate_checkpoint(run / "best.pt", **kwargs)
    via_folder = evaluate_checkpoint(folder, overrides=[f"data.root={data_root}",
                                                        f"data.cache_dir={tmp_path / 'cache'}"], **kwargs)
    assert via_folder.settings["images"] == direct.settings["images"]  # the same split of the same data
    assert via_folder.scores == pytest.approx(direct.scores, abs=0.02)  # features from the folder's weights copy
