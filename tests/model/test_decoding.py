"""Greedy and batched beam search: against each other, brute force, and per-image decoding."""
import itertools

import pytest
import torch

from show_attend.model.decoding import beam_search, decode, greedy_decode
from show_attend.data.vocab import Vocabulary

from conftest import END, IDS, PAD, START, UNK, sharp_decoder


def test_beam_one_equals_greedy():
    dec = sharp_decoder()
    feats = torch.randn(6, 49, 512)
    greedy = greedy_decode(dec, feats, max_length=8, **IDS)
    beam = beam_search(dec, feats, beam_size=1, max_length=8, **IDS)
    assert [g.token_ids for g in greedy] == [b.token_ids for b in beam]
    for g, b in zip(greedy, beam):
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-4)
        assert torch.allclose(g.alphas, b.alphas, atol=1e-6)


def _sequence_log_prob(dec, feats, tokens, finished):
    """log p of emitting ``tokens`` (+ <end> if finished), with the search's masking."""
    state = dec.init_state(feats)
    prev = torch.tensor([START])
    total = 0.0
    for tok in tokens + ([END] if finished else []):
        logits, state, _, _ = dec.step(prev, state)
        total += torch.log_softmax(logits, -1)[0, tok].item()
        prev = torch.tensor([tok])
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_beam_finds_brute_force_optimum(seed):
    """Vocabulary of 2 words + <end>, at most 4 steps: a beam wider than every prefix is exact."""
    dec = sharp_decoder(vocab_size=6, seed=seed, scale=0.3)
    feats = torch.randn(1, 49, 512)
    max_len = 4
    best = (None, -float("inf"))
    with torch.no_grad():
        for n in range(max_len + 1):
            for words in itertools.product([4, 5], repeat=n):
                finished = n < max_len
                lp = _sequence_log_prob(dec, feats, list(words), finished)
                if lp > best[1]:
                    best = (list(words), lp)
    (result,) = beam_search(dec, feats, beam_size=40, max_length=max_len, **IDS)
    assert result.token_ids == best[0]
    assert result.log_prob == pytest.approx(best[1], abs=1e-4)


def test_batched_equals_per_image():
    dec = sharp_decoder(seed=3)
    feats = torch.randn(5, 49, 512)
    batched = beam_search(dec, feats, beam_size=3, max_length=10, **IDS)
    for i in range(5):
        (single,) = beam_search(dec, feats[i: i + 1], beam_size=3, max_length=10, **IDS)
        assert single.token_ids == batched[i].token_ids
        assert single.log_prob == pytest.approx(batched[i].log_prob, abs=1e-4)
        assert torch.allclose(single.alphas, batched[i].alphas, atol=1e-5)


def test_model_that_never_ends_still_gets_a_caption():
    dec = sharp_decoder()
    with torch.no_grad():
        dec.L_o.bias[END] = -1e4  # <end> is never the best choice
    feats = torch.randn(3, 49, 512)
    for beam in (1, 3):
        out = beam_search(dec, feats, beam_size=beam, max_length=7, **IDS) if beam > 1 else \
            greedy_decode(dec, feats, max_length=7, **IDS)
        for d in out:
            assert len(d.token_ids) == 7 and not d.finished
            assert d.alphas.shape == (7, 49) and d.betas.shape == (7,)


def test_no_special_tokens_and_unk_suppression():
    dec = sharp_decoder()
    with torch.no_grad():
        dec.L_o.bias[UNK] = 50.0  # <unk> would win everywhere
    feats = torch.randn(4, 49, 512)
    for d in beam_search(dec, feats, beam_size=3, max_length=6, **IDS):
        assert not set(d.token_ids) & {PAD, START, UNK}
    allowed = beam_search(dec, feats, beam_size=3, max_length=6, **dict(IDS, unk_id=None))
    assert all(UNK in d.token_ids for d in allowed)


def test_length_penalty_prefers_longer_captions():
    dec = sharp_decoder(seed=5, scale=0.2)
    feats = torch.randn(8, 49, 512)
    plain = beam_search(dec, feats, beam_size=4, max_length=12, **IDS)
    penalised = beam_search(dec, feats, beam_size=4, max_length=12, length_penalty=2.0, **IDS)
    assert sum(len(d.token_ids) for d in penalised) >= sum(len(d.token_ids) for d in plain)


def test_decode_fills_words_and_restores_mode():
    vocab = Vocabulary(["red", "circle", "blue", "square", "a", "and", "big", "small"])
    dec = sharp_decoder(vocab_size=len(vocab))
    dec.train()
    out = decode(dec, torch.randn(2, 49, 512), vocab, beam_size=2, max_length=5)
    assert dec.training
    for d in out:
        assert d.words == [vocab.itos[i] for i in d.token_ids]
