"""Self-critical sequence training (Rennie et al., CVPR 2017): optimise CIDEr-D directly.

After cross-entropy training, the decoder samples captions and is rewarded by their CIDEr-D against
the image's references. The baseline is what the model would say at test time, its greedy caption
(``baseline="greedy"``, the paper's choice), or the mean reward of the other samples of the same
image (``baseline="mean"``). The REINFORCE loss of a batch is

    L = - sum_{b,t} (r(w^b) - baseline_b) log p(w^b_t | w^b_<t, a)  /  number of sampled tokens

so a sample better than the baseline is made more likely, a worse one less likely. Sampling runs
all images x samples in one tensor program; ``<pad>``, ``<start>`` (and ``<unk>`` when suppressed)
are never sampled; after ``<end>`` a row only emits ``<pad>`` and no longer counts.

This is not part of Xu et al. (2015); runs that use it are reported as their own rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import torch

from ..metrics.cider import CiderD
from ..model.decoder import AttentionDecoder
from ..model.decoding import forbidden_mask, greedy_decode
from ..utils.runtime import eval_mode
from ..data.vocab import Vocabulary


@dataclass
class Samples:
    tokens: torch.Tensor  # (R, T) sampled word ids, <pad> after <end>
    log_probs: torch.Tensor  # (R, T) log p of each sampled word (with grad)
    mask: torch.Tensor  # (R, T) True for the steps that count (up to and including <end>)


def sample_captions(decoder: AttentionDecoder, annotations: torch.Tensor, num_samples: int, vocab: Vocabulary,
                    max_length: int = 16, suppress_unk: bool = True) -> Samples:
    """Sample ``num_samples`` captions per image: annotations (B, L, D) -> rows b * S + s, R = B * S."""
    device = annotations.device
    state = decoder.init_state(annotations.repeat_interleave(num_samples, dim=0))  # (R, ...)
    rows = annotations.shape[0] * num_samples
    forbidden = forbidden_mask(decoder.vocab_size, vocab.pad_id, vocab.start_id,
                               vocab.unk_id if suppress_unk else None, device)  # (K,)
    prev = torch.full((rows,), vocab.start_id, dtype=torch.long, device=device)  # (R,)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)  # (R,)
    tokens, log_probs, masks = [], [], []
    for _ in range(max_length):
        logits, state, _, _ = decoder.step(prev, state)  # (R, K)
        # The policy is the distribution actually sampled from: renormalised over the allowed words.
        # (Masking after the softmax would leave the forbidden words' logits to be pushed up by every
        # sample with a negative advantage and never pushed down, until <unk> took all the mass.)
        logp = torch.log_softmax(logits.float().masked_fill(forbidden, float("-inf")), dim=-1)  # (R, K)
        word = torch.multinomial(logp.detach().exp(), 1).squeeze(1)  # (R,)
        word = word.masked_fill(finished, vocab.pad_id)
        word_logp = logp.gather(1, word.unsqueeze(1)).squeeze(1)  # (R,); -inf for <pad> rows, masked below
        masks.append(~finished)
        log_probs.append(word_logp.masked_fill(finished, 0.0))
        tokens.append(word)
        finished = finished | (word == vocab.end_id)
        prev = word
        if bool(finished.all()):
            break
    return Samples(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(masks, 1))  # (R, T) each


def ids_to_text(ids: Sequence[int], vocab: Vocabulary) -> str:
    """Word ids up to ``<end>`` as the token string CIDEr-D reads."""
    words = []
    for i in ids:
        if i == vocab.end_id or i == vocab.pad_id:
            break
        words.append(vocab.itos[i])
    return " ".join(words)


@dataclass
class SCSTStats:
    reward: float  # mean CIDEr-D of the samples
    baseline: float  # mean baseline (greedy CIDEr-D, or the leave-one-out mean)
    greedy: float  # mean CIDEr-D of the greedy captions (nan with the mean baseline)
    sample_length: float  # mean number of sampled words


def scst_loss(decoder: AttentionDecoder, annotations: torch.Tensor, image_ids: Sequence[Hashable],
              cider: CiderD, vocab: Vocabulary, num_samples: int = 5, baseline: str = "greedy",
              max_length: int = 16, suppress_unk: bool = True) -> tuple[torch.Tensor, SCSTStats]:
    """The self-critical loss of one batch of images. annotations (B, L, D) -> (scalar loss, stats)."""
    if baseline not in ("greedy", "mean"):
        raise ValueError(f"baseline must be greedy or mean, got {baseline!r}")
    if baseline == "mean" and num_samples < 2:
        raise ValueError("the mean baseline needs at least 2 samples per image")
    batch = annotations.shape[0]
    greedy_reward = None
    if baseline == "greedy":
        with eval_mode(decoder):  # the baseline is the test-time caption: no dropout
            greedy = greedy_decode(decoder, annotations, start_id=vocab.start_id, end_id=vocab.end_id,
                                   pad_id=vocab.pad_id, unk_id=vocab.unk_id if suppress_unk else None,
                                   max_length=max_length)
        greedy_reward = torch.tensor(cider.score_many([ids_to_text(g.token_ids, vocab) for g in greedy],
                                                      image_ids))  # (B,)
    samples = sample_captions(decoder, annotations, num_samples, vocab, max_length, suppress_unk)
    rows = samples.tokens.cpu().tolist()
    texts = [ids_to_text(r, vocab) for r in rows]
    sample_ids = [image_ids[r // num_samples] for r in range(len(rows))]
    reward = torch.tensor(cider.score_many(texts, sample_ids)).view(batch, num_samples)  # (B, S)
    if greedy_reward is not None:
        base = greedy_reward.unsqueeze(1).expand_as(reward)  # (B, S)
    else:  # leave-one-out mean of the other samples of the same image
        base = (reward.sum(dim=1, keepdim=True) - reward) / (num_samples - 1)  # (B, S)
    advantage = (reward - base).view(-1, 1).to(annotations.device)  # (R, 1)
    mask = samples.mask.float()  # (R, T)
    loss = -(advantage * samples.log_probs * mask).sum() / mask.sum().clamp(min=1.0)
    stats = SCSTStats(reward=float(reward.mean()), baseline=float(base.mean()),
                      greedy=float(greedy_reward.mean()) if greedy_reward is not None else float("nan"),
                      sample_length=float(((samples.tokens != vocab.pad_id) & (samples.tokens != vocab.end_id))
                                          .sum(dim=1).float().mean()))
    return loss, stats
