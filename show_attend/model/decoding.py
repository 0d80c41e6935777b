"""Greedy and beam-search decoding, batched over images x beams in one tensor program.

One implementation serves training-time validation, evaluation, captioning and visualisation.
Both always return a caption for every image: a beam that never emits ``<end>`` within
``max_length`` steps yields its best partial caption.

Scores are sums of log-probabilities (log_softmax over the full vocabulary; ``<pad>``, ``<start>``
and optionally ``<unk>`` are never emitted). With ``length_penalty`` = a > 0 the finished beams are
ranked by score / ((5 + |y|) / 6)^a (Wu et al., 2016), |y| counting ``<end>``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..utils.runtime import eval_mode
from .decoder import AttentionDecoder


@dataclass
class Decoded:
    """One image's caption."""

    token_ids: list[int]  # word ids, without <start> / <end>
    words: list[str] = field(default_factory=list)
    log_prob: float = 0.0  # sum of log p over the emitted tokens (incl. <end> when emitted)
    finished: bool = True  # False: <end> was never emitted (max_length reached)
    alphas: torch.Tensor | None = None  # (len(words), L): the attention that emitted each word (None: no attention)
    betas: torch.Tensor | None = None  # (len(words),): beta_t (mean over D for a vector gate)
    score: float | None = None  # a beam's ranking score: log_prob / length penalty (None: greedy)
    #: with ``alternatives=True``: the beam's other final hypotheses, best first (up to k - 1)
    alternatives: list["Decoded"] = field(default_factory=list)


def forbidden_mask(vocab_size: int, pad_id: int, start_id: int, unk_id: int | None,
                   device: torch.device) -> torch.Tensor:
    """(K,) True for the words a decoder may never emit: <pad>, <start> and optionally <unk>."""
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    mask[pad_id] = True
    mask[start_id] = True
    if unk_id is not None:
        mask[unk_id] = True
    return mask  # (K,)


def _length_penalty(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    if alpha <= 0:
        return torch.ones_like(lengths, dtype=torch.float)
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def greedy_decode(decoder: AttentionDecoder, annotations: torch.Tensor, *, start_id: int, end_id: int,
                  pad_id: int, unk_id: int | None = None, max_length: int = 20) -> list[Decoded]:
    """annotations (B, L, D) -> B captions, taking the arg-max word at every step."""
    batch = annotations.shape[0]
    device = annotations.device
    state = decoder.init_state(annotations)
    forbidden = forbidden_mask(decoder.vocab_size, pad_id, start_id, unk_id, device)  # (K,)
    prev = torch.full((batch,), start_id, dtype=torch.long, device=device)  # (B,)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,)
    log_prob = torch.zeros(batch, device=device)  # (B,)
    tokens, alphas, betas = [], [], []
    for _ in range(max_length):
        logits, state, alpha, beta = decoder.step(prev, state)  # (B, K), .., (B, L), (B, 1|D)
        logp = torch.log_softmax(logits.float(), dim=-1).masked_fill(forbidden, float("-inf"))  # (B, K)
        best_logp, word = logp.max(dim=-1)  # (B,), (B,)
        word = word.masked_fill(finished, pad_id)
        log_prob = log_prob + best_logp.masked_fill(finished, 0.0)
        tokens.append(word)
        alphas.append(alpha)
        betas.append(beta.float().mean(dim=1))  # (B,)
        finished = finished | (word == end_id)
        prev = word
        if bool(finished.all()):
            break
    tokens_t = torch.stack(tokens, 1).cpu()  # (B, T)
    alphas_t = torch.stack(alphas, 1).float().cpu()  # (B, T, L)
    betas_t = torch.stack(betas, 1).float().cpu()  # (B, T)
    return [_collect(tokens_t[b].tolist(), float(log_prob[b]), alphas_t[b], betas_t[b], end_id)
            for b in range(batch)]


def _collect(ids: list[int], log_prob: float, alphas: torch.Tensor, betas: torch.Tensor,
             end_id: int) -> Decoded:
    """Cut a decoded id sequence at <end>; keep the alpha/beta of the word steps."""
    n = ids.index(end_id) if end_id in ids else len(ids)
    return Decoded(ids[:n], [], log_prob, end_id in ids, alphas[:n].clone(), betas[:n].clone())


@torch.no_grad()
def beam_search(decoder: AttentionDecoder, annotations: torch.Tensor, *, beam_size: int, start_id: int,
                end_id: int, pad_id: int, unk_id: int | None = None, max_length: int = 20,
                length_penalty: float = 0.0, alternatives: bool = False) -> list[Decoded]:
    """annotations (B, L, D) -> B captions; all images and beams advance together as (B*k) rows.

    Finished beams stay in the beam with a frozen score (they extend only with ``<pad>`` at log-prob
    0), so the k survivors at each step are the k best prefixes, finished or not. With
    ``alternatives``, each caption also lists the other k - 1 final beams in ranking order
    (``.alternatives``), leaving out beams that never became a real hypothesis.
    """
    batch, num_cells, _ = annotations.shape
    k = beam_size
    device = annotations.device
    vocab = decoder.vocab_size
    forbidden = forbidden_mask(vocab, pad_id, start_id, unk_id, device)  # (K,)
    # After <end>, a beam may only "emit" <pad> at log-prob 0.
    frozen_row = torch.full((vocab,), float("-inf"), device=device)
    frozen_row[pad_id] = 0.0  # (K,)

    state = decoder.init_state(annotations.repeat_interleave(k, dim=0))  # rows b*k + j
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # only beam 0 is alive at the start: (B, k)
    prev = torch.full((batch * k,), start_id, dtype=torch.long, device=device)  # (B*k,)
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)  # (B, k)
    lengths = torch.zeros(batch, k, dtype=torch.long, device=device)  # tokens emitted incl. <end>
    tokens = torch.empty(batch, k, 0, dtype=torch.long, device=device)  # (B, k, t)
    alphas = torch.empty(batch, k, 0, num_cells, device=device)  # (B, k, t, L)
    betas = torch.empty(batch, k, 0, device=device)  # (B, k, t)
    row_offset = (torch.arange(batch, device=device) * k).unsqueeze(1)  # (B, 1)

    for _ in range(max_length):
        logits, state, alpha, beta = decoder.step(prev, state)  # (B*k, K), .., (B*k, L), (B*k, 1|D)
        logp = torch.log_softmax(logits.float(), dim=-1).masked_fill(forbidden, float("-inf"))
        logp = logp.view(batch, k, vocab)  # (B, k, K)
        logp = torch.where(finished.unsqueeze(2), frozen_row, logp)  # (B, k, K)
        candidates = (scores.unsqueeze(2) + logp).view(batch, k * vocab)  # (B, k*K)
        scores, flat = candidates.topk(k, dim=1)  # (B, k), (B, k)
        beam_idx = torch.div(flat, vocab, rounding_mode="floor")  # (B, k): parent beam
        word = flat % vocab  # (B, k)
        rows = (row_offset + beam_idx).view(-1)  # (B*k,) rows of the parents

        parent_finished = finished.gather(1, beam_idx)  # (B, k)
        lengths = lengths.gather(1, beam_idx) + (~parent_finished).long()
        finished = parent_finished | (word == end_id)
        tokens = torch.cat([tokens.gather(1, beam_idx.unsqueeze(2).expand_as(tokens)),
                            word.unsqueeze(2)], dim=2)  # (B, k, t+1)
        alpha = alpha.view(batch, k, num_cells).gather(1, beam_idx.unsqueeze(2).expand(-1, -1, num_cells))
        alphas = torch.cat([alphas.gather(1, beam_idx[:, :, None, None].expand_as(alphas)),
                            alpha.unsqueeze(2)], dim=2)  # (B, k, t+1, L)
        beta = beta.float().mean(dim=1).view(batch, k).gather(1, beam_idx)  # (B, k)
        betas = torch.cat([betas.gather(1, beam_idx.unsqueeze(2).expand_as(betas)),
                           beta.unsqueeze(2)], dim=2)  # (B, k, t+1)
        state = state.index_select(rows)
        prev = word.view(-1)  # (B*k,)
        if bool(finished.all()):
            break

    ranking = scores / _length_penalty(lengths, length_penalty)  # (B, k)
    best = ranking.argmax(dim=1)  # (B,)
    order = ranking.argsort(dim=1, descending=True, stable=True) if alternatives else None  # (B, k): best first
    tokens, alphas, betas, ranking = tokens.cpu(), alphas.float().cpu(), betas.float().cpu(), ranking.cpu()
    out = []
    for b in range(batch):
        ranked = [int(best[b])]  # the best beam, then (with alternatives) the other real ones
        if alternatives:
            ranked += [i for i in order[b].tolist() if i != ranked[0] and bool(torch.isfinite(ranking[b, i]))]
        beams = [_collect(tokens[b, j].tolist(), float(scores[b, j]), alphas[b, j], betas[b, j], end_id)
                 for j in ranked]
        for j, beam in zip(ranked, beams):
            beam.score = float(ranking[b, j])
        beams[0].alternatives = beams[1:]
        out.append(beams[0])
    return out


def decode(decoder: AttentionDecoder, annotations: torch.Tensor, vocab, *, beam_size: int = 1,
           max_length: int = 20, length_penalty: float = 0.0, suppress_unk: bool = True,
           alternatives: bool = False) -> list[Decoded]:
    """Decode a batch and fill in the words. annotations (B, L, D) on the decoder's device.

    ``alternatives``: each caption lists the beam's other final hypotheses, best first (greedy: none).
    """
    ids = dict(start_id=vocab.start_id, end_id=vocab.end_id, pad_id=vocab.pad_id,
               unk_id=vocab.unk_id if suppress_unk else None, max_length=max_length)
    with eval_mode(decoder):
        if beam_size == 1:  # the same result as a beam of 1 (tested), without the bookkeeping
            results = greedy_decode(decoder, annotations, **ids)
        else:
            results = beam_search(decoder, annotations, beam_size=beam_size, length_penalty=length_penalty,
                                  alternatives=alternatives, **ids)
    attends = getattr(decoder, "attends", True)
    for r in results:
        for hypothesis in [r, *r.alternatives]:
            hypothesis.words = [vocab.itos[i] for i in hypothesis.token_ids]
            if not attends:  # an attention-free model: its uniform placeholders are no attention map
                hypothesis.alphas = None
    return results
