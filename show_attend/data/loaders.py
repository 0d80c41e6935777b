"""PyTorch datasets, the length-grouped batch sampler and the collate function.

Training items are (image, caption) pairs: one per reference caption. The image side is either a
row of the feature cache (``FeatureStore``) or a transformed image (when fine-tuning the CNN).
"""
from __future__ import annotations

import logging
import random
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from .box_targets import BoxTargets
from .features import FeatureStore
from .transforms import ImageTransform
from .vocab import Vocabulary
from .prepare import PreparedDataset

LOG = logging.getLogger(__name__)


class _ImageSource:
    """Either cached features or image files, looked up by image id."""

    def __init__(self, dataset: PreparedDataset, split: str, store: Optional[FeatureStore],
                 transform: Optional[ImageTransform]):
        if store is None and transform is None:
            raise ValueError("need a feature store or an image transform")
        self.store = store
        self.transform = transform
        self.paths = {im.image_id: dataset.image_dir / im.file_name for im in dataset.split(split)}
        # images that broke after preparation: their cached rows are zeros, so they are left out
        self.unreadable = dict(store.unreadable) if store is not None else {}
        for image_id, reason in self.unreadable.items():
            LOG.warning("%s split: leaving out %s (unreadable at extraction: %s)", split, image_id, reason)

    def usable(self, image_id: str) -> bool:
        return image_id not in self.unreadable

    def get(self, image_id: str) -> torch.Tensor:
        if self.store is not None:
            return self.store.get(image_id)  # (L, D) float16
        return self.transform(self.paths[image_id])  # (3, S, S)


class CaptionDataset(Dataset):
    """One item per (image, caption): returns (image tensor, caption ids ``<start> .. <end>``)."""

    def __init__(self, dataset: PreparedDataset, split: str, vocab: Vocabulary, max_words: int = 50,
                 store: Optional[FeatureStore] = None, transform: Optional[ImageTransform] = None):
        self.source = _ImageSource(dataset, split, store, transform)
        self.items: list[tuple[str, list[int]]] = []
        self.caption_index: list[int] = []  # item -> which of its image's captions it is
        for im in dataset.split(split):
            if not self.source.usable(im.image_id):
                continue
            for k, toks in enumerate(im.tokens):
                if toks:
                    self.items.append((im.image_id, vocab.encode(toks, max_words)))
                    self.caption_index.append(k)
        if not self.items:
            raise ValueError(f"split {split!r} has no captions")
        self.lengths = [len(ids) for _, ids in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_id, ids = self.items[i]
        return self.source.get(image_id), torch.tensor(ids, dtype=torch.long)


class SupervisedCaptionDataset(Dataset):
    """The items of a :class:`CaptionDataset` with their attention targets (``data.box_targets``):
    (image tensor, caption ids, targets (T, L)), row t the box mask of the word step t predicts."""

    def __init__(self, captions: CaptionDataset, targets: BoxTargets):
        self.captions, self.targets = captions, targets
        self.items, self.lengths = captions.items, captions.lengths

    def __len__(self) -> int:
        return len(self.captions)

    def caption(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i`` without its image: (caption ids (T+1,), targets (T, L))."""
        image_id, ids = self.items[i]
        return torch.tensor(ids, dtype=torch.long), self.targets.steps(image_id, self.captions.caption_index[i],
                                                                       len(ids) - 2)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.captions.source.get(self.items[i][0]), *self.caption(i))


class ImageDataset(Dataset):
    """One item per image (for decoding a split): returns (image tensor, image id)."""

    def __init__(self, dataset: PreparedDataset, split: str, store: Optional[FeatureStore] = None,
                 transform: Optional[ImageTransform] = None, max_images: int = 0):
        self.source = _ImageSource(dataset, split, store, transform)
        self.image_ids = [im.image_id for im in dataset.split(split) if self.source.usable(im.image_id)]
        if max_images > 0:
            self.image_ids = self.image_ids[:max_images]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        return self.source.get(self.image_ids[i]), self.image_ids[i]


def collate_captions(batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images; right-pad captions with ``pad_id`` -> (B, ...), (B, T_max)."""
    images = torch.stack([b[0] for b in batch])
    longest = max(len(b[1]) for b in batch)
    captions = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    for i, (_, ids) in enumerate(batch):
        captions[i, : len(ids)] = ids
    return images, captions


def collate_supervised(batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], pad_id: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`collate_captions` plus the targets, zero-padded -> (B, ...), (B, T+1), (B, T, L)."""
    images, captions = collate_captions([(b[0], b[1]) for b in batch], pad_id)
    targets = torch.zeros(len(batch), captions.shape[1] - 1, batch[0][2].shape[1])  # (B, T, L)
    for i, (_, _, target) in enumerate(batch):
        targets[i, : len(target)] = target
    return images, captions, targets


def collate_images(batch: Sequence[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of captions of (nearly) equal length, as in the paper: almost no padding.

    Each epoch: shuffle, stable-sort by length (so equal lengths stay shuffled), cut into batches,
    shuffle the batch order. Deterministic given ``seed`` and the epoch (``set_epoch``).

    With ``world`` > 1 (distributed training) every process builds the same global batches and
    takes its share of each, items ``rank::world``; a global batch smaller than ``world`` (the
    last, partial one) is left out, so that no process is ever handed an empty batch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world: int = 1):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world = rank, world
        self.epoch = 0
        self.skip = 0  # batches of this epoch already trained (a resume after an interruption)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        order.sort(key=lambda i: self.lengths[i])
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches()[self.skip:]
        if self.world > 1:
            batches = [b[self.rank::self.world] for b in batches if len(b) >= self.world]
        return iter(batches)

    def __len__(self) -> int:
        n = len(self.lengths) // self.batch_size
        rest = len(self.lengths) % self.batch_size
        return n + (1 if rest and not self.drop_last and rest >= self.world else 0)
