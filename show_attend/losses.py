"""Training loss: masked cross-entropy plus the doubly stochastic attention regularisation.

    loss = -1/N sum_{b,t: y_bt != <pad>} log p(y_bt | a_b, y_b,<t)
           + lambda * 1/B sum_b sum_i (1 - sum_{t valid} alpha_bti)^2        (Xu et al., eq. 14)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .decoder import DecoderOutput


def caption_loss(output: DecoderOutput, captions: torch.Tensor, pad_id: int, alpha_c: float = 1.0,
                 label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """output.logits (B, T, K), output.alphas (B, T, L); captions (B, T+1) -> (loss, parts).

    ``<pad>`` targets never count: neither in the cross-entropy nor in the attention sums.
    """
    targets = captions[:, 1:]  # (B, T): the word each step predicts
    mask = targets != pad_id  # (B, T)
    logits = output.logits.float()
    ce = F.cross_entropy(logits[mask], targets[mask], label_smoothing=label_smoothing)  # (N, K) vs (N,)
    attention_per_cell = (output.alphas.float() * mask.unsqueeze(2)).sum(dim=1)  # (B, L)
    reg = ((1.0 - attention_per_cell) ** 2).sum(dim=1).mean()  # scalar
    loss = ce + alpha_c * reg
    return loss, {"ce": float(ce.detach()), "attention_reg": float(reg.detach()),
                  "tokens": int(mask.sum())}
