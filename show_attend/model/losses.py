"""Training loss: the caption's negative log-likelihood plus doubly stochastic attention regularisation.

The paper (eq. 14) minimises, per caption,

    L = -log p(y | a) + lambda * sum_i (1 - sum_t alpha_ti)^2

where -log p(y | a) = -sum_t log p(y_t | a, y_<t) is summed over the caption's words. We divide the
whole batch loss by the mean number of target tokens per caption, so that the logged loss reads as
a per-token cross-entropy (what the optimiser sees is the paper's loss up to that positive scale):

    loss = 1/N sum_{b,t: y_bt != <pad>} -log p(y_bt | ...)  +  lambda / (N/B) * 1/B sum_b sum_i (1 - sum_t alpha_bti)^2

with N the number of non-pad targets in the batch and B the batch size. Dividing the attention
term by the caption length matters: averaging the cross-entropy over tokens but not the
regulariser (as some re-implementations do) makes lambda ~12 times stronger than in the paper, and
on a 7x7 grid (L = 49 > T) that pushes the attention towards uniform, since a uniform map
minimises sum_i (1 - s_i)^2 when sum_i s_i = T < L.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .decoder import DecoderOutput


def caption_loss(output: DecoderOutput, captions: torch.Tensor, pad_id: int, alpha_c: float = 1.0,
                 label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """output.logits (B, T, K), output.alphas (B, T, L); captions (B, T+1) -> (loss, parts).

    ``<pad>`` targets never count: neither in the cross-entropy nor in the attention sums.
    ``parts``: ``ce`` (mean per token), ``attention_reg`` (mean per caption, unweighted), ``tokens``.
    """
    targets = captions[:, 1:]  # (B, T): the word each step predicts
    mask = targets != pad_id  # (B, T)
    logits = output.logits.float()
    ce = F.cross_entropy(logits[mask], targets[mask], label_smoothing=label_smoothing)  # (N, K) vs (N,)
    attention_per_cell = (output.alphas.float() * mask.unsqueeze(2)).sum(dim=1)  # (B, L): sum_t alpha_ti
    reg = ((1.0 - attention_per_cell) ** 2).sum(dim=1).mean()  # scalar: mean over captions
    tokens_per_caption = mask.sum().clamp(min=1) / mask.shape[0]  # N / B
    loss = ce + alpha_c * reg / tokens_per_caption
    return loss, {"ce": float(ce.detach()), "attention_reg": float(reg.detach()),
                  "tokens": int(mask.sum())}
