"""An ensemble of decoders that decodes as one: p(y_t) = (1/M) sum_m p_m(y_t | a, y_<t).

Not in Xu et al. (2015); a standard way to gain a little from several independently trained models
(e.g. Vinyals et al. 2015). Every member reads the same annotations (so the members must share the
encoder, its grid and the vocabulary) and keeps its own LSTM state; at each step the members'
word distributions are averaged. ``step`` returns log p of the average as its "logits" (already
normalised, so ``log_softmax`` leaves them unchanged), which lets greedy decoding and beam search
use an ensemble exactly as they use one ``AttentionDecoder``. The attention map reported for a
word is the members' mean alpha (and mean beta).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .decoder import AttentionDecoder, DecoderState


@dataclass
class EnsembleState:
    """One ``DecoderState`` per member, reordered together during beam search."""

    states: list[DecoderState]

    def index_select(self, index: torch.Tensor) -> "EnsembleState":
        return EnsembleState([s.index_select(index) for s in self.states])

    def narrow(self, rows: int) -> "EnsembleState":
        return EnsembleState([s.narrow(rows) for s in self.states])


class DecoderEnsemble(nn.Module):
    """Members of the same vocabulary size, averaged in probability space (inference only)."""

    def __init__(self, members: list[AttentionDecoder]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one decoder")
        sizes = {m.vocab_size for m in members}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members have different vocabulary sizes: {sorted(sizes)}")
        self.members = nn.ModuleList(members)
        self.vocab_size = members[0].vocab_size
        # the members' mean alpha means something only if every member attends
        self.attends = all(getattr(m, "attends", True) for m in members)

    def init_state(self, annotations: torch.Tensor) -> EnsembleState:
        """annotations (B, L, D) -> each member's (h_0, c_0, projected annotations)."""
        return EnsembleState([m.init_state(annotations) for m in self.members])

    def step(self, prev_words: torch.Tensor, state: EnsembleState
             ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor, torch.Tensor]:
        """prev_words (B,) -> log of the mean word distribution (B, K), states, mean alpha (B, L), mean beta (B, 1)."""
        logps, states, alphas, betas = [], [], [], []
        for member, member_state in zip(self.members, state.states):
            logits, new_state, alpha, beta = member.step(prev_words, member_state)  # (B, K), .., (B, L), (B, 1|D)
            logps.append(torch.log_softmax(logits.float(), dim=-1))  # (B, K)
            states.append(new_state)
            alphas.append(alpha.float())
            betas.append(beta.float().mean(dim=1, keepdim=True))  # (B, 1): a vector gate's mean
        stacked = torch.stack(logps, 0)  # (M, B, K)
        mean_logp = torch.logsumexp(stacked, dim=0) - math.log(len(self.members))  # log (1/M) sum_m p_m: (B, K)
        alpha = torch.stack(alphas, 0).mean(0)  # (B, L)
        beta = torch.stack(betas, 0).mean(0)  # (B, 1)
        return mean_logp, EnsembleState(states), alpha, beta

    def advance(self, prev_words: torch.Tensor, state: EnsembleState) -> tuple[EnsembleState, torch.Tensor]:
        """step() without the output layers: prev_words (B,) -> states, the members' mean alpha (B, L)."""
        moved = [member.advance(prev_words, member_state) for member, member_state in zip(self.members, state.states)]
        alpha = torch.stack([shown.float() for _, shown in moved], 0).mean(0)  # (M, B, L) -> (B, L)
        return EnsembleState([new_state for new_state, _ in moved]), alpha
