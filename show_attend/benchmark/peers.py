"""The designs users would otherwise run, written here so that they are timed on the same model.

``tutorial_beam_search`` is the per-image beam search of the most used PyTorch captioning tutorial's
design: one image at a time (batch 1), the k beams of that image expanded from it, and a Python loop
over the steps in which finished beams are moved out and the live ones shrink, with the host reading
the chosen words back at every step. Its evaluation decodes each image once per reference caption
(the test loader yields (image, caption) pairs), i.e. five times on Flickr8k.
"""
from __future__ import annotations

import torch

from ..model.decoder import AttentionDecoder


@torch.no_grad()
def tutorial_beam_search(decoder: AttentionDecoder, annotations: torch.Tensor, *, beam_size: int, start_id: int,
                         end_id: int, max_length: int = 20) -> list[int]:
    """annotations (1, L, D) -> the best caption's word ids, the tutorial's way (one image)."""
    k = beam_size
    state = decoder.init_state(annotations.expand(k, -1, -1))  # (k, L, D): the image repeated per beam
    prev = torch.full((k,), start_id, dtype=torch.long, device=annotations.device)  # (k,)
    seqs = prev.unsqueeze(1)  # (k, 1)
    top_scores = torch.zeros(k, 1, device=annotations.device)  # (k, 1)
    done_seqs, done_scores = [], []
    step = 1
    while True:
        logits, state, _, _ = decoder.step(prev, state)  # (s, K)
        scores = top_scores.expand_as(logits) + torch.log_softmax(logits, dim=1)  # (s, K)
        if step == 1:
            top_scores, words = scores[0].topk(k, 0)  # all beams start from the same <start>
        else:
            top_scores, words = scores.view(-1).topk(k, 0)  # (s,)
        parents = torch.div(words, decoder.vocab_size, rounding_mode="floor")  # (s,)
        nxt = words % decoder.vocab_size  # (s,)
        seqs = torch.cat([seqs[parents], nxt.unsqueeze(1)], dim=1)  # (s, step + 1)
        live = [i for i, w in enumerate(nxt.tolist()) if w != end_id]  # the host reads every step
        ended = sorted(set(range(len(nxt))) - set(live))
        done_seqs += seqs[ended].tolist()
        done_scores += top_scores[ended].tolist()
        k -= len(ended)
        if k == 0 or step >= max_length:
            break
        seqs, prev = seqs[live], nxt[live]
        state = state.index_select(parents[live])  # the live beams' rows (annotations copied again)
        top_scores = top_scores[live].unsqueeze(1)
        step += 1
    if not done_seqs:  # no beam ended: the best live one
        done_seqs, done_scores = seqs.tolist(), top_scores.view(-1).tolist()
    best = max(range(len(done_scores)), key=done_scores.__getitem__)
    return [w for w in done_seqs[best][1:] if w != end_id]
