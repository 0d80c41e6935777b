"""Decoder ensembles: the averaged distribution, search on it, and evaluation with several checkpoints."""
import itertools

import pytest
import torch

from show_attend.model.decoding import beam_search, greedy_decode
from show_attend.model.ensemble import DecoderEnsemble
from show_attend.evaluation.evaluate import evaluate_checkpoint

from conftest import END, IDS, START, sharp_decoder


def test_step_is_the_mean_of_the_members_distributions():
    a, b = sharp_decoder(seed=0), sharp_decoder(seed=1)
    ens = DecoderEnsemble([a, b]).eval()
    feats = torch.randn(3, 49, 512)
    prev = torch.full((3,), START)
    with torch.no_grad():
        logp, _, alpha, beta = ens.step(prev, ens.init_state(feats))
        la, _, alpha_a, _ = a.step(prev, a.init_state(feats))
        lb, _, alpha_b, _ = b.step(prev, b.init_state(feats))
    expected = (torch.softmax(la, -1) + torch.softmax(lb, -1)) / 2  # (3, K)
    assert torch.allclose(logp.exp(), expected, atol=1e-6)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(alpha, (alpha_a + alpha_b) / 2, atol=1e-6)
    assert beta.shape == (3, 1)


def test_ensemble_of_one_decodes_like_its_member():
    dec = sharp_decoder(seed=2)
    ens = DecoderEnsemble([dec]).eval()
    feats = torch.randn(4, 49, 512)
    for search in (lambda d: greedy_decode(d, feats, max_length=8, **IDS),
                   lambda d: beam_search(d, feats, beam_size=3, max_length=8, **IDS)):
        alone, together = search(dec), search(ens)
        assert [r.token_ids for r in alone] == [r.token_ids for r in together]
        for x, y in zip(alone, together):
            assert x.log_prob == pytest.approx(y.log_prob, abs=1e-4)
            assert torch.allclose(x.alphas, y.alphas, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_beam_finds_the_ensembles_brute_force_optimum(seed):
    """2 words + <end>, at most 4 steps: the best sequence under the averaged distribution."""
    ens = DecoderEnsemble([sharp_decoder(6, seed, 0.3), sharp_decoder(6, seed + 10, 0.3)]).eval()
    feats = torch.randn(1, 49, 512)

    def log_prob(tokens, finished):
        state, prev, total = ens.init_state(feats), torch.tensor([START]), 0.0
        for tok in tokens + ([END] if finished else []):
            logp, state, _, _ = ens.step(prev, state)
            total += logp[0, tok].item()
            prev = torch.tensor([tok])
        return total

    with torch.no_grad():
        best = max(((list(w), log_prob(list(w), n < 4)) for n in range(5)
                    for w in itertools.product([4, 5], repeat=n)), key=lambda x: x[1])
    (result,) = beam_search(ens, feats, beam_size=40, max_length=4, **IDS)
    assert result.token_ids == best[0]
    assert result.log_prob == pytest.approx(best[1], abs=1e-4)


def test_members_must_share_the_vocabulary_size():
    with pytest.raises(ValueError, match="vocabulary"):
        DecoderEnsemble([sharp_decoder(12), sharp_decoder(13)])


def test_evaluate_an_ensemble_of_checkpoints(trained_run, tmp_path):
    run_dir, _ = trained_run
    single = evaluate_checkpoint(run_dir / "best.pt", split="val", beam_size=2, tokenizer="python",
                                 progress=False)
    # The same checkpoint twice averages two identical distributions: the same captions and scores.
    twice = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=tmp_path / "ens", beam_size=2,
                                tokenizer="python", progress=False, ensemble=[run_dir / "best.pt"])
    assert {k: d.token_ids for k, d in single.decoded.items()} == {k: d.token_ids for k, d in twice.decoded.items()}
    assert twice.scores == pytest.approx(single.scores)
    assert twice.settings["ensemble"] == [str(run_dir / "best.pt")] * 2
    assert twice.settings["run"].startswith("ensemble: ")
    # A different vocabulary is refused with a message that says why.
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    ckpt["vocab"]["itos"] = ckpt["vocab"]["itos"] + ["zebra"]
    torch.save(ckpt, tmp_path / "other_vocab.pt")
    with pytest.raises(ValueError, match="vocabulary differs"):
        evaluate_checkpoint(run_dir / "best.pt", split="val", tokenizer="python", progress=False,
                            ensemble=[tmp_path / "other_vocab.pt"])
    # So is a member that read other annotations (here: another input size).
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    ckpt["config"]["encoder"]["image_size"] = 2 * ckpt["config"]["encoder"]["image_size"]
    torch.save(ckpt, tmp_path / "other_input.pt")
    with pytest.raises(ValueError, match="encoder.image_size"):
        evaluate_checkpoint(run_dir / "best.pt", split="val", tokenizer="python", progress=False,
                            ensemble=[tmp_path / "other_input.pt"])


@pytest.mark.parametrize("kind", ["soft", "hard", "none"])
def test_advance_moves_the_state_as_step_does_without_the_output_layer(kind):
    """advance() (teacher-forced attention for grounding) = step()'s state and map, for a member and an ensemble."""
    from show_attend.model.decoder import AttentionDecoder

    torch.manual_seed(3)
    extra = {"attention": kind, "image_input": "merge"} if kind == "none" else {"attention": kind}
    members = [AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, dropout=0.0, **extra).eval()
               for _ in range(2)]
    feats = torch.randn(3, 49, 512)
    words = torch.tensor([[START, 4, 5, 6], [START, 7, 7, 3], [START, 9, 4, 4]])  # (B, T)
    for decoder in (members[0], DecoderEnsemble(members).eval()):
        with torch.no_grad():
            stepped, advanced = decoder.init_state(feats), decoder.init_state(feats)
            for t in range(words.shape[1]):
                _, stepped, alpha_step, _ = decoder.step(words[:, t], stepped)
                advanced, alpha_adv = decoder.advance(words[:, t], advanced)
                assert torch.allclose(alpha_adv.float(), alpha_step.float(), atol=1e-6)
        states = zip(stepped.states, advanced.states) if hasattr(stepped, "states") else [(stepped, advanced)]
        for s, a in states:
            assert torch.allclose(s.h, a.h, atol=1e-6) and torch.allclose(s.c, a.c, atol=1e-6)
