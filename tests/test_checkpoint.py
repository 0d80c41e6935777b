"""Checkpoints: one restore for every caller, and checkpoints written before the layout moved
(show-attend 0.1.0, flat package) still load and decode exactly as they did."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import REPO
from show_attend.checkpoint import load_checkpoint, restore, restore_ensemble, save_checkpoint
from show_attend.model.decoding import decode

FIXTURE = REPO / "tests" / "fixtures" / "checkpoint_v0_1_0_tiny.pt"


def _annotations() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 49, 512, generator=g) * 2  # the inputs the expected captions were made from


def test_a_checkpoint_from_before_the_move_decodes_as_it_did():
    """Written by the 0.1.0 trainer (optimizer and RNG state dropped to keep the file small); the
    expected words and log-probabilities were recorded with the 0.1.0 code."""
    expected = json.loads(FIXTURE.with_name("checkpoint_v0_1_0_tiny_expected.json").read_text())
    model = restore(FIXTURE)
    assert model.cfg.name == "premove_tiny" and not model.decoder.training and not model.fine_tuned_encoder
    for beam in (1, 3):
        got = decode(model.decoder, _annotations(), model.vocab, beam_size=beam, max_length=12)
        assert [d.words for d in got] == [e["words"] for e in expected[f"beam{beam}"]]
        assert [d.log_prob for d in got] == pytest.approx([e["log_prob"] for e in expected[f"beam{beam}"]], abs=1e-5)


def test_restore_applies_overrides_and_weights_and_builds_the_encoder_on_demand(tmp_path):
    model = restore(FIXTURE, overrides=["data.root=/elsewhere"], encoder_weights="none")
    assert model.cfg.data.root == "/elsewhere" and model.cfg.encoder.weights == "none"
    encoder = model.build_encoder()
    assert not encoder.training and encoder.grid_size == model.cfg.encoder.grid_size
    # a fine-tuned block 5 travels in the checkpoint and comes back into the encoder
    block5 = {k: torch.full_like(v, 0.5) for k, v in encoder.block5_state().items()}
    payload = dict(load_checkpoint(FIXTURE), encoder_block5=block5)
    save_checkpoint(tmp_path / "ft.pt", payload)
    tuned = restore(tmp_path / "ft.pt", encoder_weights="none")
    assert tuned.fine_tuned_encoder
    assert all(torch.equal(v, block5[k]) for k, v in tuned.build_encoder().block5_state().items())
    with pytest.raises(ValueError, match="not supported"):
        restore_ensemble(tuned, [FIXTURE])


def test_restore_of_a_run_folder_and_of_a_non_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(FIXTURE.read_bytes())
    assert restore(run).path == run / "last.pt"  # no best.pt: the last one
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a show-attend checkpoint"):
        restore(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        restore(tmp_path / "nothing.pt")


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"decoder": {}})
    assert load_checkpoint(path)["format"] == "show-attend/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
