"""Self-critical sequence training: sampling, the loss, learning from the reward alone, the trainer."""
import json

import pytest
import torch

from show_attend.checkpoint import load_checkpoint
from show_attend.metrics.cider import CiderD
from show_attend.model.decoder import AttentionDecoder
from show_attend.model.decoding import decode
from show_attend.training.scst import ids_to_text, sample_captions, scst_loss
from show_attend.training.trainer import train
from show_attend.data.vocab import Vocabulary

from conftest import tiny_config

WORDS = ["a", "red", "blue", "circle", "square", "big", "small", "on", "left"]


def _setup(seed=0):
    torch.manual_seed(seed)
    vocab = Vocabulary(WORDS)
    decoder = AttentionDecoder(len(vocab), 512, embed_dim=16, hidden_dim=32, attention_dim=16, dropout=0.0)
    return vocab, decoder


def test_samples_stop_at_end_and_never_emit_forbidden_words():
    vocab, decoder = _setup()
    samples = sample_captions(decoder, torch.randn(3, 49, 512), 4, vocab, max_length=6)
    assert samples.tokens.shape[0] == 12 and samples.tokens.shape == samples.log_probs.shape == samples.mask.shape
    forbidden = {vocab.pad_id, vocab.start_id, vocab.unk_id}
    for row, mask in zip(samples.tokens.tolist(), samples.mask.tolist()):
        n = row.index(vocab.end_id) + 1 if vocab.end_id in row else len(row)
        assert mask == [True] * n + [False] * (len(row) - n)  # counts up to and including <end>
        assert all(t == vocab.pad_id for t in row[n:]) and not forbidden & set(row[:n])
    assert torch.isfinite(samples.log_probs).all() and (samples.log_probs <= 0).all()
    assert ids_to_text([vocab.stoi["red"], vocab.stoi["circle"], vocab.end_id, vocab.stoi["a"]], vocab) == "red circle"


def test_equal_rewards_give_no_gradient_signal():
    vocab, decoder = _setup()
    cider = CiderD({"x": ["red circle"]})
    cider.score = lambda caption, image_id: 1.0  # every sample as good as the baseline
    loss, stats = scst_loss(decoder, torch.randn(2, 49, 512), ["x", "x"], cider, vocab, num_samples=3,
                            baseline="mean", max_length=5)
    assert loss.item() == 0.0 and stats.reward == stats.baseline == 1.0
    with pytest.raises(ValueError):
        scst_loss(decoder, torch.randn(2, 49, 512), ["x", "x"], cider, vocab, num_samples=1, baseline="mean")


def test_forbidden_words_get_no_gradient():
    """The policy is the renormalised distribution actually sampled from: words that can never be
    sampled (<pad>, <start>, <unk>) get no gradient, so the reward cannot drift probability onto them."""
    vocab, decoder = _setup()
    cider = CiderD({"x": ["red circle"], "y": ["blue square on left"]})
    loss, _ = scst_loss(decoder, torch.randn(2, 49, 512), ["x", "y"], cider, vocab, num_samples=4,
                        baseline="mean", max_length=6)
    loss.backward()
    grad = decoder.L_o.bias.grad  # (K,)
    forbidden = [vocab.pad_id, vocab.start_id, vocab.unk_id]
    assert grad.abs().sum() > 0
    assert torch.equal(grad[forbidden], torch.zeros(3))


def test_learns_captions_from_the_reward_alone():
    """From random weights, with no teacher forcing, the CIDEr-D reward teaches each image its caption."""
    vocab, decoder = _setup(1)
    refs = {"a": ["big red circle on left"], "b": ["small blue square"]}
    cider = CiderD(refs)
    feats = torch.randn(2, 49, 512)
    feats[1] = -feats[0]  # two distinguishable images
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    first = None
    for _ in range(160):
        loss, stats = scst_loss(decoder, feats, ["a", "b"], cider, vocab, num_samples=8, baseline="mean",
                                max_length=8)
        first = stats.reward if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    greedy = [" ".join(d.words) for d in decode(decoder, feats, vocab, max_length=8)]
    # Each image gets its own caption, made of its own reference's words, learned from the reward
    # alone. (A policy-gradient run may settle on a partial caption, e.g. "big red circle on", which
    # already earns most of the reward, so the exact words are not asserted.)
    for caption, ref in zip(greedy, ["big red circle on left", "small blue square"]):
        assert len(caption.split()) >= 2 and set(caption.split()) <= set(ref.split()), greedy
    assert first < 2.0 and stats.reward > 5.0  # CIDEr-D of an exact match is 10


def _advantage_weighted_log_prob(decoder, feats, tokens, vocab, advantage, num_samples):
    """sum_r advantage_r log p(sample_r), teacher-forced on fixed sampled rows."""
    rows = tokens.shape[0]
    captions = torch.cat([torch.full((rows, 1), vocab.start_id), tokens], dim=1)  # (R, 1+T)
    out = decoder(feats.repeat_interleave(num_samples, 0), captions)
    logp = torch.log_softmax(out.logits, -1).gather(2, tokens.unsqueeze(2)).squeeze(2)  # (R, T)
    mask = torch.cat([torch.ones(rows, 1, dtype=torch.bool), (tokens != vocab.end_id)[:, :-1]], 1)
    mask &= tokens != vocab.pad_id
    return float((advantage.view(-1, 1) * logp * mask).sum())


def test_greedy_baseline_step_favours_samples_that_beat_the_greedy_caption():
    vocab, decoder = _setup(2)
    cider = CiderD({"a": ["big red circle on left"], "b": ["small blue square"]})
    feats = torch.randn(2, 49, 512)
    torch.manual_seed(7)
    samples = sample_captions(decoder, feats, 6, vocab, max_length=8)  # what scst_loss will draw
    greedy = decode(decoder, feats, vocab, max_length=8)
    texts = [ids_to_text(r, vocab) for r in samples.tokens.tolist()]
    reward = torch.tensor(cider.score_many(texts, ["a"] * 6 + ["b"] * 6))
    base = torch.tensor(cider.score_many([" ".join(g.words) for g in greedy], ["a", "b"])).repeat_interleave(6)
    advantage = reward - base
    assert advantage.abs().sum() > 0
    with torch.no_grad():
        before = _advantage_weighted_log_prob(decoder, feats, samples.tokens, vocab, advantage, 6)
    torch.manual_seed(7)
    loss, stats = scst_loss(decoder, feats, ["a", "b"], cider, vocab, num_samples=6, baseline="greedy",
                            max_length=8)
    assert stats.reward == pytest.approx(float(reward.mean())) and stats.greedy == pytest.approx(float(base.mean()))
    loss.backward()
    with torch.no_grad():
        for p in decoder.parameters():
            p -= 1e-2 * p.grad
        after = _advantage_weighted_log_prob(decoder, feats, samples.tokens, vocab, advantage, 6)
    assert after > before


def test_trainer_runs_scst_from_an_xe_checkpoint(tmp_path, trained_run):
    run_dir, _ = trained_run
    cfg = tiny_config(tmp_path, "name=scst", "train.objective=scst", f"train.init_from={run_dir / 'best.pt'}",
                      "train.epochs=1", "train.batch_size=8", "train.scst_samples=2", "optim.lr=1e-4")
    run = train(cfg, progress=False)
    row = json.loads((run / "history.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 3  # 24 images / 8 per batch
    assert row["train_reward"] >= 0 and "train_baseline" in row and "CIDEr" in row
    start = load_checkpoint(run_dir / "best.pt")["decoder"]
    after = load_checkpoint(run / "last.pt")["decoder"]
    assert any(not torch.equal(start[k], after[k]) for k in start)  # it trained from those weights


def test_init_from_rejects_another_vocabulary(tmp_path, trained_run):
    run_dir, _ = trained_run
    cfg = tiny_config(tmp_path, "name=other", "data.synthetic.seed=5", "data.synthetic.num_train=3",
                      f"train.init_from={run_dir / 'best.pt'}")
    with pytest.raises(ValueError, match="vocabulary"):
        train(cfg, progress=False)


def test_init_from_names_the_decoder_settings_that_differ(tmp_path, trained_run):
    run_dir, _ = trained_run
    cfg = tiny_config(tmp_path, "name=other", f"train.init_from={run_dir / 'best.pt'}",
                      "model.annotation_norm=layernorm")
    with pytest.raises(ValueError, match="model.annotation_norm: 'none' there, 'layernorm' here"):
        train(cfg, progress=False)
