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
minimises sum_i (1 - s_i)^2 when sum_i s_i = T < L. Without attention there is no alpha and no such term.

Hard attention (sec. 4.1) maximises the variational bound L_s = sum_s p(s | a) log p(y | s, a) <=
log p(y | a). With captions whose locations s~ were sampled, its gradient estimate (eq. 12) is

    d L_s / dW ~ d log p(y | s~, a)/dW + lambda_r (log p(y | s~, a) - b) d log p(s~ | a)/dW + lambda_e dH[s~]/dW

with the moving-average baseline b_k = 0.9 b_{k-1} + 0.1 log p(y | s~_k, a). :func:`hard_attention_terms`
returns the surrogate whose gradient is minus the last two terms (the first is the cross-entropy
above), on the same per-token scale: it is summed per caption and divided by N. Captions that took
the expected context (the paper's p = 0.5 trick) have no REINFORCE term.

Attention supervision (Liu et al. 2017, "strong supervision"; not in Xu et al.): for the words w_t of
a caption that belong to a phrase with human boxes, the target m_t (L,) is the boxes' union averaged
onto the grid cells and normalised to sum 1, and :func:`attention_supervision_loss` is the cross-entropy

    1/S sum_{b,t supervised} -sum_i m_bti log alpha_bti

over the S supervised words of the batch (other words add nothing). For hard attention alpha is the
distribution the locations are sampled from.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .decoder import DecoderOutput


def caption_loss(output: DecoderOutput, captions: torch.Tensor, pad_id: int, alpha_c: float = 1.0,
                 label_smoothing: float = 0.0, hard: Optional["HardAttentionBound"] = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """output.logits (B, T, K), output.alphas (B, T, L); captions (B, T+1) -> (loss, parts).

    ``<pad>`` targets never count: neither in the cross-entropy nor in the attention sums.
    ``parts``: ``ce`` (mean per token), ``attention_reg`` (mean per caption, unweighted), ``tokens``.
    ``hard``: the bound's REINFORCE and entropy terms for a hard-attention output (training).
    """
    targets = captions[:, 1:]  # (B, T): the word each step predicts
    mask = targets != pad_id  # (B, T)
    logits = output.logits.float()
    ce = F.cross_entropy(logits[mask], targets[mask], label_smoothing=label_smoothing)  # (N, K) vs (N,)
    reg = logits.new_zeros(())
    if output.attends:
        attention_per_cell = (output.alphas.float() * mask.unsqueeze(2)).sum(dim=1)  # (B, L): sum_t alpha_ti
        reg = ((1.0 - attention_per_cell) ** 2).sum(dim=1).mean()  # scalar: mean over captions
    tokens_per_caption = mask.sum().clamp(min=1) / mask.shape[0]  # N / B
    loss = ce + alpha_c * reg / tokens_per_caption
    parts = {"ce": float(ce.detach()), "attention_reg": float(reg.detach()), "tokens": int(mask.sum())}
    if hard is not None and output.location_log_probs is not None:
        extra, hard_parts = hard.terms(output, captions, mask)
        loss = loss + extra
        parts.update(hard_parts)
    return loss, parts


def attention_supervision_loss(alphas: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """alphas (B, T, L); targets (B, T, L): m_ti, a distribution over the cells at each supervised
    step, zeros elsewhere -> (mean over the supervised steps of -sum_i m_ti log alpha_ti, S).

    0 (with the graph kept) when no step is supervised.
    """
    targets = targets.to(alphas.device, torch.float32)
    supervised = targets.sum(dim=2) > 0  # (B, T)
    log_alpha = torch.log(alphas.float().clamp_min(1e-12))  # (B, T, L)
    per_step = -(targets * log_alpha).sum(dim=2)  # (B, T): 0 where unsupervised
    count = int(supervised.sum())
    return per_step.sum() / max(count, 1), count


class HardAttentionBound:
    """lambda_r, lambda_e and the baseline b of the hard-attention bound (eq. 12; module docstring).

    ``baseline``: the decoder's ``reinforce_baseline`` buffer (saved with its weights, so a resumed
    run continues with it); updated in place, after the terms are computed, from the batch's mean
    log p(y | s~, a) over its sampled captions. It starts as NaN and takes the first batch's mean
    (from 0, as log p(y | s~, a) is ~ -40 at first, every early sample would look bad).
    """

    def __init__(self, baseline: torch.Tensor, reinforce_weight: float = 1.0, entropy_weight: float = 0.002,
                 decay: float = 0.9):
        self.baseline = baseline
        self.reinforce_weight = reinforce_weight
        self.entropy_weight = entropy_weight
        self.decay = decay

    @classmethod
    def for_decoder(cls, decoder, train_cfg) -> Optional["HardAttentionBound"]:
        """The bound for a hard-attention decoder (None for the others), from a ``TrainConfig``."""
        if getattr(decoder, "attention_kind", "soft") != "hard":
            return None
        return cls(decoder.reinforce_baseline, train_cfg.hard_reinforce_weight, train_cfg.hard_entropy_weight,
                   train_cfg.hard_baseline_decay)

    def terms(self, output: DecoderOutput, captions: torch.Tensor, mask: torch.Tensor
              ) -> tuple[torch.Tensor, dict[str, float]]:
        """-> (surrogate loss, parts). mask (B, T): the non-pad targets."""
        targets = captions[:, 1:]  # (B, T)
        logp = torch.log_softmax(output.logits.float(), dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)  # (B, T)
        log_likelihood = (logp * mask).sum(dim=1).detach()  # log p(y | s~, a): (B,)
        sampled = output.sampled  # (B,)
        any_sampled = bool(sampled.any())
        batch_mean = log_likelihood[sampled].mean() if any_sampled else None  # over the sampled captions
        if any_sampled and bool(torch.isnan(self.baseline)):
            self.baseline.copy_(batch_mean)
        advantage = (log_likelihood - self.baseline) * sampled  # (B,): 0 for expected-context captions
        location_logp = (output.location_log_probs * mask).sum(dim=1)  # log p(s~ | a): (B,)
        entropy = (output.entropies * mask).sum(dim=1)  # H[s~] summed over the steps: (B,)
        tokens = mask.sum().clamp(min=1)  # N
        surrogate = -(self.reinforce_weight * advantage * location_logp
                      + self.entropy_weight * entropy).sum() / tokens
        parts = {"reinforce_baseline": float(self.baseline),
                 "reinforce_advantage": float(advantage.sum() / sampled.sum().clamp(min=1)),
                 "location_entropy": float(entropy.detach().sum() / tokens)}
        if any_sampled:  # b_k = decay * b_{k-1} + (1 - decay) * mean log p(y | s~_k, a)
            with torch.no_grad():
                self.baseline.mul_(self.decay).add_((1 - self.decay) * batch_mean)
        return surrogate, parts
