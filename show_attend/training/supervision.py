"""Attention supervision in training (``train.attention_supervision``; Liu et al. 2017's strong
supervision): ``weight * attention_supervision_loss`` (``model.losses``) joins the batch loss, over
the words of the boxed phrases of the train captions (``data.box_targets``: train boxes only).

* Cross-entropy (``objective: xe``): the term is computed on the same teacher-forced pass as the
  cross-entropy. Under ``torchrun`` each rank's mean is weighted by its share of the global batch's
  supervised words, so the ranks together average over all of them, as one process would.
* Self-critical (``objective: scst``): the sampled captions have no boxes, so the term applies to
  an extra teacher-forced pass of the batch images' reference captions that have boxed words
  (the supervision term alone: no cross-entropy joins the reward).
* Hard attention: alpha is the distribution the cells are sampled from.
* Ensembles are built from members trained with it; nothing else changes.

The logged part ``supervision`` is the unweighted mean -sum_i m_i log alpha_i per supervised word:
log L (3.89 on 7x7) for a uniform map; its minimum, at alpha = m, is the entropy of m (0 for a box
inside one cell). ``supervised_words``: their count in the batch.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.box_targets import BoxTargets
from ..data.entities import Entities
from ..data.loaders import CaptionDataset, SupervisedCaptionDataset, collate_supervised
from ..model.decoder import DecoderOutput
from ..model.losses import attention_supervision_loss
from ..utils.distributed import Distributed


def check_supervision(cfg) -> None:
    """Refuse settings under which ``train.attention_supervision`` cannot work, naming what to set."""
    weight = cfg.train.attention_supervision
    if weight < 0:
        raise ValueError(f"train.attention_supervision must be >= 0 (0: off), got {weight}")
    if weight == 0:
        return
    if not cfg.data.entities_dir:
        raise ValueError(f"train.attention_supervision={weight} needs the human boxes: set data.entities_dir to "
                         "the Flickr30k Entities folder (the one holding Sentences/ and Annotations/), e.g. "
                         "--set data.entities_dir=/path/to/flickr30k_entities, or set train.attention_supervision=0")
    Entities(cfg.data.entities_dir)  # EntitiesError naming the expected layout when it is not such a folder
    if cfg.model.attention == "none":
        raise ValueError("train.attention_supervision needs a decoder with attention; model.attention is none")


class AttentionSupervision:
    """The term for one run: its weight and the train split's targets."""

    def __init__(self, weight: float, targets: BoxTargets, captions: CaptionDataset, pad_id: int):
        self.weight, self.targets, self.pad_id = weight, targets, pad_id
        self.supervised = SupervisedCaptionDataset(captions, targets)
        # image id -> the items (captions) that have boxed words: the self-critical pass's captions
        self.items_of: dict[str, list[int]] = {}
        for i, (image_id, _) in enumerate(captions.items):
            if targets.words(image_id, captions.caption_index[i]):
                self.items_of.setdefault(image_id, []).append(i)

    @classmethod
    def for_run(cls, cfg, data, pad_id: int) -> Optional["AttentionSupervision"]:
        """None when ``train.attention_supervision`` is 0; ``data``: the run's ``TrainingData``."""
        if not cfg.train.attention_supervision:
            return None
        return cls(cfg.train.attention_supervision, data.box_targets, data.train_set, pad_id)

    def term(self, output: DecoderOutput, targets: torch.Tensor, dist: Distributed
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """output.alphas (B, T, L), targets (B, T, L) -> (weight * the rank's share of the mean, parts)."""
        loss, count = attention_supervision_loss(output.alphas, targets)
        share = dist.token_weight(count)  # this rank's supervised words x ranks / all ranks' words
        return self.weight * loss * share, {"supervision": float(loss.detach()), "supervised_words": count}

    def reference_pass(self, decoder: torch.nn.Module, annotations: torch.Tensor, image_ids: list[str]
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """Self-critical training's term: teacher-force the images' boxed reference captions.

        annotations (B, L, D) of the images ``image_ids`` -> (weight * mean, parts)."""
        rows, batch = [], []
        for b, image_id in enumerate(image_ids):
            for i in self.items_of.get(image_id, []):
                rows.append(b)
                batch.append((annotations.new_empty(0), *self.supervised.caption(i)))  # no image: we have its a_i
        if not batch:
            return annotations.new_zeros(()), {"supervision": 0.0, "supervised_words": 0}
        _, captions, targets = collate_supervised(batch, self.pad_id)  # (N, T+1), (N, T, L)
        index = torch.tensor(rows, device=annotations.device)  # (N,): each caption's image in the batch
        output = decoder(annotations.index_select(0, index), captions.to(annotations.device))  # alphas (N, T, L)
        loss, count = attention_supervision_loss(output.alphas, targets)
        return self.weight * loss, {"supervision": float(loss.detach()), "supervised_words": count}
