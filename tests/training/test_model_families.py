"""Every decoder family (soft, hard, and the attention-free init / inject / merge) trains on the
synthetic demo through the same trainer, and evaluates, ensembles, exports and captions."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend import Captioner
from show_attend.checkpoint import load_checkpoint, restore, save_checkpoint
from show_attend.evaluation.evaluate import evaluate_checkpoint
from show_attend.model.decoder import AttentionDecoder
from show_attend.training.trainer import train

from conftest import tiny_config

FAMILIES = {
    "soft": [],
    "hard": ["model.attention=hard"],
    "none_init": ["model.attention=none", "model.image_input=init"],
    "none_inject": ["model.attention=none", "model.image_input=inject"],
    "none_merge": ["model.attention=none", "model.image_input=merge"],
}


@pytest.fixture(scope="module")
def family_runs(tmp_path_factory):
    """One short run per family, all on the same cached features."""
    root = tmp_path_factory.mktemp("families")
    runs = {}
    for name, overrides in FAMILIES.items():
        runs[name] = train(tiny_config(root, f"name={name}", "train.epochs=1", "train.max_steps=3", *overrides),
                           progress=False)
    return root, runs


def test_each_family_trains_with_the_same_trainer(family_runs):
    _, runs = family_runs
    for name, run in runs.items():
        rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        assert rows and np.isfinite(rows[-1]["train_ce"]), name
        decoder = restore(run / "best.pt").decoder
        assert decoder.attends == (not name.startswith("none")), name
        assert ("train_reinforce_baseline" in rows[-1]) == (name == "hard"), name
    # the attention-free decoders carry no attention weights
    keys = restore(runs["none_merge"] / "best.pt").decoder.state_dict()
    assert not any(k.startswith(("attention.", "f_beta", "init_h")) for k in keys) and "L_z.weight" in keys
    assert "inject.weight" in restore(runs["none_inject"] / "best.pt").decoder.state_dict()


@pytest.mark.parametrize("image_input", ["init", "inject", "merge"])
def test_the_image_reaches_the_words_without_attention(image_input):
    torch.manual_seed(0)
    dec = AttentionDecoder(9, 8, embed_dim=6, hidden_dim=6, dropout=0.0, attention="none",
                           image_input=image_input).eval()
    captions = torch.randint(3, 9, (2, 4))
    a, b = dec(torch.randn(2, 5, 8), captions), dec(torch.randn(2, 5, 8), captions)
    assert not torch.allclose(a.logits, b.logits)
    assert torch.allclose(a.alphas, torch.full_like(a.alphas, 0.2))  # placeholders, and said so
    assert not a.attends


def test_soft_settings_refuse_image_input():
    with pytest.raises(ValueError, match="attention-free"):
        AttentionDecoder(9, 8, image_input="merge")


def test_each_family_evaluates_and_ensembles(family_runs, tmp_path):
    _, runs = family_runs
    report = evaluate_checkpoint(runs["hard"] / "best.pt", split="test", out_dir=tmp_path / "hard",
                                 beam_size=2, tokenizer="python", progress=False)
    assert set(report.scores) >= {"Bleu_4", "CIDEr"}
    assert "grounding" in json.loads((tmp_path / "hard" / "metrics.json").read_text())
    # an ensemble across families; with an attention-free member there is no map, so no grounding
    mixed = evaluate_checkpoint(runs["soft"] / "best.pt", split="test", out_dir=tmp_path / "mixed", beam_size=2,
                                tokenizer="python", progress=False,
                                ensemble=[runs["hard"] / "best.pt", runs["none_merge"] / "best.pt"])
    assert "CIDEr" in mixed.scores
    assert "grounding" not in json.loads((tmp_path / "mixed" / "metrics.json").read_text())


def test_each_family_exports_and_captions_from_the_folder(family_runs, tmp_path, capsys):
    import torchvision

    from show_attend.cli import caption_main, visualize_main
    from show_attend.pretrained import export_checkpoints

    _, runs = family_runs
    torch.manual_seed(0)
    weights = tmp_path / "vgg16_random.pth"  # exports need a weights file (not random features)
    torch.save(torchvision.models.vgg16(weights=None).features.state_dict(), weights)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((60, 80, 3), (200, 40, 40), dtype=np.uint8)).save(photo)
    for name in ("hard", "none_merge"):
        ckpt = load_checkpoint(runs[name] / "best.pt")
        ckpt["config"]["encoder"]["weights"] = str(weights)
        save_checkpoint(tmp_path / f"{name}.pt", ckpt)
        folder = export_checkpoints([tmp_path / f"{name}.pt"], tmp_path / f"model_{name}", with_encoder_weights=True)
        direct = Captioner.from_checkpoint(tmp_path / f"{name}.pt", device="cpu")
        loaded = Captioner.from_pretrained(folder, device="cpu")
        assert loaded.caption([photo], beam_size=2) == direct.caption([photo], beam_size=2), name
        capsys.readouterr()
        assert caption_main([str(photo), "--model", str(folder), "--json", "--attention"]) == 0
        row = json.loads(capsys.readouterr().out)
        if name == "hard":  # the cell it chose for each word
            assert all(sorted(a)[-1] == 1.0 and sum(a) == 1.0 for a in row["attention"])
            assert "hard attention chose" in row["attention_shown"]
        else:  # no maps, and said so
            assert row["attention"] is None and "no attention" in row["attention_shown"]
            assert visualize_main([str(photo), "--model", str(folder), "--out", str(tmp_path / "viz")]) == 0
            assert "no heatmaps" in capsys.readouterr().out and not (tmp_path / "viz").exists()
