"""Attention against Flickr30k Entities boxes: the metric by hand, and an evaluation with a generated Entities folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from show_attend.data.boxes import FrameGrid, to_frame
from show_attend.data.prepare import prepare_dataset
from show_attend.data.transforms import ImageTransform
from show_attend.evaluation.entities_grounding import Region, phrase_score, summarize
from show_attend.evaluation.evaluate import evaluate_checkpoint

from conftest import write_entities_from_shapes

# A photo annotated at 448x224, read from a 224x112 copy, seen by the encoder at 112 px. The box is
# chosen to land on the frame's left 48 px, full height, in each transform.
ANNOTATED, FILE, S = (448, 224), (224, 112), 112
BOX = {"squash": (0.0, 0.0, 192.0, 224.0),  # x * (224/448) * (112/224): [0, 192) -> [0, 48)
       "center_crop": (112.0, 0.0, 208.0, 224.0)}  # file x [56, 104) is the crop's [0, 48)


@pytest.mark.parametrize("mode", ["squash", "center_crop"])
@pytest.mark.parametrize("g, mass", [(7, 46 / 48), (14, 47 / 48)])
def test_attention_correctness_by_hand(mode, g, mass):
    """A map spread evenly over the cells left of x = 48 (7x7: 3 columns of 16 px; 14x14: 6 of 8 px):
    upsampled bilinearly it ramps from 1 at the last centre to 0 half a cell past the box's edge, so
    the renormalised mass inside [0, 48) is 46/48 (7x7) or 47/48 (14x14), per row (hand-computed in
    tests/data/test_entities.py)."""
    framed = to_frame([BOX[mode]], ANNOTATED, FILE, ImageTransform(S, mode))
    assert framed == ((0.0, 0.0, 48.0, 112.0),)
    grid = FrameGrid.of(S, grid_size=g)
    region = Region.of(grid, framed)
    on = np.zeros((g, g))
    on[:, : 48 * g // S] = 1.0
    off = np.zeros((g, g))
    off[g // 2, g - 1] = 1.0  # a peak on the far right: nothing in the box
    alphas = np.stack([off.reshape(-1), on.reshape(-1) / on.sum()])  # (T=2, L): "a dog"
    score = phrase_score(alphas, positions=(0, 1), head=1, regions=[region], total=grid.total, types=("animals",))
    assert score.correctness == pytest.approx(mass)  # the max over the phrase's two words
    assert score.hit  # the head's peak (first cell of the evenly spread block) is at x = 8 or 4
    assert score.uniform == pytest.approx(48 / 112)  # the box's share of the frame
    assert score.chance_hit == pytest.approx((48 * g // S) / g)  # cell centres in the box
    miss = phrase_score(alphas, positions=(0,), head=0, regions=[region], total=grid.total)
    assert miss.correctness == pytest.approx(0.0) and not miss.hit
    summary = summarize([score, miss])
    assert summary["n"] == 2 and summary["correctness"] == pytest.approx(mass / 2)
    assert summary["hit_rate"] == 0.5 and summary["uniform_correctness"] == pytest.approx(48 / 112)
    assert summary["per_type"]["animals"]["n"] == 1 and summary["per_type"]["people"]["n"] == 0


def test_evaluate_scores_both_modes_against_generated_entities(trained_run, tmp_path, capsys):
    from show_attend.cli.commands import results_table_main

    run_dir, cfg = trained_run
    dataset = prepare_dataset(cfg.data, progress=False)
    n_boxed = write_entities_from_shapes(dataset, "val", tmp_path / "entities")
    plain = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=tmp_path / "plain", beam_size=2,
                                tokenizer="python", progress=False)
    report = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=tmp_path / "eval", beam_size=2,
                                 tokenizer="python", progress=False,
                                 overrides=[f"data.entities_dir={tmp_path / 'entities'}"])
    assert report.scores == plain.scores  # scoring the attention changes no caption
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    eg = metrics["entities_grounding"]
    assert eg == json.loads(json.dumps(report.entities_grounding))
    assert eg["annotated_images"] == eg["images"] == 6
    assert eg["aligned_captions"] == eg["captions"] == 30  # reordered, one unrelated sentence left out
    assert eg["phrases"]["scorable"] == eg["phrases"]["scored"] == n_boxed > 0
    assert eg["attention"] == "soft: alpha" and eg["decoding"] == "beam 2"
    for mode in ("reference", "generated"):
        block = eg[mode]
        assert set(block) >= {"n", "correctness", "uniform_correctness", "hit_rate", "chance_hit_rate", "per_type"}
        if block["n"]:
            assert 0.0 <= block["correctness"] <= 1.0 and 0.0 < block["uniform_correctness"] < 1.0
    assert eg["reference"]["n"] == n_boxed
    assert sum(eg["reference"]["per_type"][t]["n"] for t in ("people", "animals", "other")) == n_boxed
    gen = eg["generated"]
    assert gen["scored_words"] == gen["n"] <= gen["object_words"] <= gen["generated_words"]
    text = (tmp_path / "eval" / "report.md").read_text()
    assert "Attention on real photos" in text and "generated captions" in text and "uniform" in text
    assert "real-photo grounding" in report.grounding_line
    assert "entities_grounding" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert results_table_main([str(tmp_path / "eval"), "--grounding"]) == 0
    out = capsys.readouterr().out
    assert "ref. correctness" in out and "per phrase type" in out


def test_a_wrong_entities_folder_says_why_and_changes_nothing(trained_run, tmp_path):
    run_dir, _ = trained_run
    (tmp_path / "wrong").mkdir()
    plain = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=tmp_path / "plain", beam_size=2,
                                tokenizer="python", progress=False)
    report = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=tmp_path / "eval", beam_size=2,
                                 tokenizer="python", progress=False,
                                 overrides=[f"data.entities_dir={tmp_path / 'wrong'}"])
    assert "no Sentences/ or Annotations/" in report.entities_note and "Annotations/<id>.xml" in report.entities_note
    assert report.entities_note in report.grounding_line
    assert report.scores == plain.scores and not report.entities_grounding
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    before = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert written["metrics"] == before["metrics"] and set(written) == set(before)


@pytest.mark.parametrize("members", [1, 2])
def test_teacher_forced_maps_of_rows_sorted_longest_first_match_a_full_pass(members):
    """_alphas runs step t only on the rows still needed (longest first, views of the state): each row's maps up
    to its own length equal those of a plain pass over every row and step, for a decoder and an ensemble."""
    import torch

    from show_attend.evaluation.entities_grounding import EntitiesGrounding
    from show_attend.model.decoder import AttentionDecoder
    from show_attend.model.ensemble import DecoderEnsemble

    torch.manual_seed(0)
    decoders = [AttentionDecoder(15, 64, embed_dim=16, hidden_dim=24, attention_dim=20, dropout=0.0).eval()
                for _ in range(members)]
    decoder = decoders[0] if members == 1 else DecoderEnsemble(decoders).eval()
    grounder = EntitiesGrounding.__new__(EntitiesGrounding)  # only its decoder is used here
    grounder.decoder = decoder
    annotations, inputs = torch.randn(5, 9, 64), torch.randint(0, 15, (5, 7))
    needs = [7, 6, 6, 3, 1]
    maps = grounder._alphas(annotations, inputs, needs)  # (R, T, L)
    with torch.no_grad():
        state, full = decoder.init_state(annotations), []
        for t in range(7):
            _, state, alpha, _ = decoder.step(inputs[:, t], state)
            full.append(alpha.float())
    full = torch.stack(full, 1).double().numpy()
    for r, need in enumerate(needs):
        np.testing.assert_allclose(maps[r, :need], full[r, :need], atol=1e-6)
        assert not maps[r, need:].any()
