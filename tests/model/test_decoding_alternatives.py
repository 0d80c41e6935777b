"""The beam's other hypotheses (``alternatives=True``): the best caption unchanged, the rest ranked,
distinct, and each scored with its own true log-probability."""
import pytest
import torch

from show_attend.data.vocab import Vocabulary
from show_attend.model.decoding import beam_search, decode

from conftest import END, IDS, START, sharp_decoder


def _log_prob(dec, feats, tokens, finished):
    state, prev, total = dec.init_state(feats), torch.tensor([START]), 0.0
    for tok in tokens + ([END] if finished else []):
        logits, state, _, _ = dec.step(prev, state)
        total += torch.log_softmax(logits, -1)[0, tok].item()
        prev = torch.tensor([tok])
    return total


@pytest.mark.parametrize("length_penalty", [0.0, 1.5])
def test_alternatives_rank_the_final_beams_and_keep_the_best_caption(length_penalty):
    dec = sharp_decoder(vocab_size=14, seed=3, scale=0.5)
    feats = torch.randn(3, 49, 512)
    plain = beam_search(dec, feats, beam_size=4, max_length=9, length_penalty=length_penalty, **IDS)
    ranked = beam_search(dec, feats, beam_size=4, max_length=9, length_penalty=length_penalty, alternatives=True,
                         **IDS)
    for b, (p, r) in enumerate(zip(plain, ranked)):
        assert p.token_ids == r.token_ids and p.log_prob == r.log_prob and not p.alternatives
        assert 1 <= len(r.alternatives) <= 3
        hypotheses = [r, *r.alternatives]
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        assert len({(tuple(h.token_ids), h.finished) for h in hypotheses}) == len(hypotheses)
        for h in hypotheses:
            assert h.log_prob == pytest.approx(_log_prob(dec, feats[b: b + 1], h.token_ids, h.finished), abs=1e-4)
            assert h.alphas.shape == (len(h.token_ids), 49) and h.betas.shape == (len(h.token_ids),)


def test_decode_names_the_alternatives_words_and_greedy_has_none():
    vocab = Vocabulary(["red", "circle", "blue", "square", "a", "and", "big", "small"])
    dec = sharp_decoder(vocab_size=len(vocab))
    feats = torch.randn(2, 49, 512)
    for d in decode(dec, feats, vocab, beam_size=3, max_length=6, alternatives=True):
        assert all(a.words == [vocab.itos[i] for i in a.token_ids] for a in d.alternatives) and d.alternatives
    greedy = decode(dec, feats, vocab, beam_size=1, max_length=6, alternatives=True)
    assert all(d.alternatives == [] and d.score is None for d in greedy)
