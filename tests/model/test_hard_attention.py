"""Hard (stochastic) attention, sec. 4.1: the estimator of the bound's gradient, its terms, its
reduction to soft attention, overfitting, and deterministic decoding."""
from __future__ import annotations

import itertools

import pytest
import torch

from show_attend.model.decoder import AttentionDecoder, DecoderOutput
from show_attend.model.decoding import beam_search, greedy_decode
from show_attend.model.losses import HardAttentionBound, caption_loss

from conftest import IDS, PAD


def toy(attention: str = "hard", seed: int = 0, **kw) -> AttentionDecoder:
    torch.manual_seed(seed)
    return AttentionDecoder(6, 4, embed_dim=5, hidden_dim=5, attention_dim=5, dropout=0.0, attention=attention, **kw)


def test_reinforce_estimate_is_unbiased_against_the_enumerated_bound():
    """L_s = sum_s p(s|a) log p(y|s,a) enumerated over all 3^2 location sequences; the average of the
    estimator (lambda_r = 1, a constant baseline, no entropy) matches its exact gradient."""
    dec = toy(hard_expectation_prob=0.0).train()
    annotations = torch.randn(1, 3, 4) * 2  # L = 3 cells
    caption = torch.tensor([[1, 4, 2]])  # <start> w <end>: T = 2 steps
    params = [p for p in dec.parameters()]

    # exact: every location sequence, weighted by its probability
    seqs = torch.tensor(list(itertools.product(range(3), repeat=2)))  # (9, T)
    out = dec(annotations.expand(9, -1, -1), caption.expand(9, -1), locations=seqs)
    logp_y = torch.log_softmax(out.logits, -1).gather(2, caption[:, 1:].expand(9, -1).unsqueeze(2)).squeeze(2).sum(1)
    logp_s = out.location_log_probs.sum(1)  # (9,)
    assert torch.allclose(logp_s.exp().sum(), torch.tensor(1.0), atol=1e-5)  # the 9 sequences are all of them
    bound = (logp_s.exp() * logp_y).sum()
    exact = torch.autograd.grad(bound, params)

    # estimate: R sampled sequences through the real loss (its gradient is -(R / N) x the estimate)
    torch.manual_seed(1)
    rows = 40000
    out = dec(annotations.expand(rows, -1, -1), caption.expand(rows, -1))
    assert bool(out.sampled.all())
    bound_terms = HardAttentionBound(torch.tensor(-2.5), reinforce_weight=1.0, entropy_weight=0.0, decay=1.0)
    loss, _ = caption_loss(out, caption.expand(rows, -1), PAD, alpha_c=0.0, hard=bound_terms)
    grads = torch.autograd.grad(loss, params, retain_graph=True)
    scale = -(rows * 2) / rows  # N / R = T tokens per caption
    flat_exact = torch.cat([g.flatten() for g in exact])
    flat_est = torch.cat([g.flatten() for g in grads]) * scale
    cosine = torch.nn.functional.cosine_similarity(flat_exact, flat_est, dim=0)
    assert cosine > 0.995, float(cosine)
    assert (flat_est - flat_exact).norm() / flat_exact.norm() < 0.05
    # f_att (W_a, W_h, w) learns only through the REINFORCE term: there too the estimate matches,
    # and without the term its gradient would be zero
    names = [n for n, _ in dec.named_parameters()]
    att = [i for i, n in enumerate(names) if n.startswith("attention.") and exact[i].abs().sum() > 0]
    assert att
    att_exact = torch.cat([exact[i].flatten() for i in att])
    att_est = torch.cat([grads[i].flatten() for i in att]) * scale
    assert (att_est - att_exact).norm() / att_exact.norm() < 0.15
    no_reinforce = HardAttentionBound(torch.tensor(-2.5), reinforce_weight=0.0, entropy_weight=0.0, decay=1.0)
    loss, _ = caption_loss(out, caption.expand(rows, -1), PAD, alpha_c=0.0, hard=no_reinforce)
    biased = torch.autograd.grad(loss, [params[i] for i in att], allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0.0 for g in biased)


def _output(sampled: list[bool]) -> tuple[DecoderOutput, torch.Tensor]:
    torch.manual_seed(0)
    batch, steps = len(sampled), 3
    logits = torch.randn(batch, steps, 6)
    out = DecoderOutput(logits, torch.full((batch, steps, 4), 0.25), torch.ones(batch, steps, 1),
                        location_log_probs=torch.full((batch, steps), -1.0, requires_grad=True),
                        entropies=torch.full((batch, steps), 0.5, requires_grad=True),
                        sampled=torch.tensor(sampled))
    captions = torch.tensor([[1, 4, 5, 2]] * batch)
    return out, captions


def test_reinforce_baseline_and_entropy_terms_have_the_papers_signs_and_sizes():
    out, captions = _output([True, True, False])
    mask = captions[:, 1:] != PAD
    tokens = int(mask.sum())
    bound = HardAttentionBound(torch.tensor(-3.0), reinforce_weight=0.7, entropy_weight=0.01, decay=0.9)
    logp_y = torch.log_softmax(out.logits, -1).gather(2, captions[:, 1:].unsqueeze(2)).squeeze(2).sum(1)  # (B,)
    surrogate, parts = bound.terms(out, captions, mask)
    surrogate.backward()
    # d loss / d log p(s_t) = -lambda_r (log p(y|s,a) - b) / N for sampled captions, 0 for expected ones
    expected_grad = -0.7 * (logp_y - (-3.0)) / tokens
    assert torch.allclose(out.location_log_probs.grad[:2], expected_grad[:2, None].expand(2, 3), atol=1e-6)
    assert torch.all(out.location_log_probs.grad[2] == 0)
    # minimising the loss maximises the entropy: d loss / d H_t = -lambda_e / N
    assert torch.allclose(out.entropies.grad, torch.full((3, 3), -0.01 / tokens))
    # b_k = 0.9 b_{k-1} + 0.1 mean log p(y | s~) over the sampled captions
    assert torch.isclose(bound.baseline, torch.tensor(0.9 * -3.0) + 0.1 * logp_y[:2].mean(), atol=1e-6)
    assert parts["reinforce_baseline"] == pytest.approx(-3.0)  # the baseline the terms used
    # a better-than-baseline caption makes its locations more likely (gradient descent raises log p(s))
    assert bool(((logp_y[:2] > -3.0) == (out.location_log_probs.grad[:2, 0] < 0)).all())


def test_baseline_starts_at_the_first_batch_mean():
    out, captions = _output([True, True])
    dec = toy()
    bound = HardAttentionBound.for_decoder(dec, type("T", (), dict(
        hard_reinforce_weight=1.0, hard_entropy_weight=0.0, hard_baseline_decay=0.9)))
    assert torch.isnan(dec.reinforce_baseline)
    bound.terms(out, captions, captions[:, 1:] != PAD)
    logp_y = torch.log_softmax(out.logits, -1).gather(2, captions[:, 1:].unsqueeze(2)).squeeze(2).sum(1)
    assert torch.isclose(dec.reinforce_baseline, logp_y.mean(), atol=1e-6)  # the decoder's buffer moved
    assert "reinforce_baseline" in dec.state_dict()  # saved with the weights (resume continues with it)


def test_expectation_at_probability_one_is_soft_attention():
    hard = toy("hard", hard_expectation_prob=1.0).train()
    soft = toy("soft").train()
    state = {k: v for k, v in hard.state_dict().items() if k != "reinforce_baseline"}
    soft.load_state_dict(state)
    annotations, captions = torch.randn(4, 3, 4), torch.randint(3, 6, (4, 5))
    a, b = hard(annotations, captions), soft(annotations, captions)
    assert torch.allclose(a.logits, b.logits, atol=1e-6) and torch.allclose(a.alphas, b.alphas, atol=1e-6)
    assert not bool(a.sampled.any())
    # at test time, hard_decode=expectation decodes exactly as soft attention
    hard.hard_decode = "expectation"
    assert [d.token_ids for d in greedy_decode(hard.eval(), annotations, **IDS)] == \
        [d.token_ids for d in greedy_decode(soft.eval(), annotations, **IDS)]


def test_test_time_attention_is_the_argmax_cell():
    dec = toy().eval()
    annotations = torch.randn(3, 3, 4)
    state = dec.init_state(annotations)
    _, _, shown, _ = dec.step(torch.full((3,), 1), state)
    weighted, alpha = dec.attention(state.annotations, state.projected, state.h)
    assert torch.equal(shown.argmax(1), alpha.argmax(1)) and torch.equal(shown.sum(1), torch.ones(3))
    first = greedy_decode(dec, annotations, **IDS, max_length=6)
    again = beam_search(dec, annotations, beam_size=1, **IDS, max_length=6)  # deterministic, and equal
    assert [d.token_ids for d in first] == [d.token_ids for d in again]
    for d in first:  # each word's map is one cell
        assert torch.all((d.alphas == 0) | (d.alphas == 1)) and torch.all(d.alphas.sum(1) == 1)


def test_tiny_hard_attention_model_overfits_ten_captions():
    torch.manual_seed(0)
    dec = AttentionDecoder(12, 16, embed_dim=32, hidden_dim=48, attention_dim=32, dropout=0.0, attention="hard")
    annotations = torch.randn(10, 4, 16)
    captions = torch.cat([torch.full((10, 1), 1), torch.randint(4, 12, (10, 4)), torch.full((10, 1), 2)], 1)
    bound = HardAttentionBound(dec.reinforce_baseline)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    dec.train()
    for _ in range(300):
        loss, parts = caption_loss(dec(annotations, captions), captions, PAD, alpha_c=0.0, hard=bound)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["ce"] < 0.1
    decoded = greedy_decode(dec.eval(), annotations, **IDS, max_length=8)
    right = sum(d.token_ids == captions[i, 1:-1].tolist() for i, d in enumerate(decoded))
    assert right >= 9, right
