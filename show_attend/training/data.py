"""The loaders a training run reads: training pairs (or images, for self-critical training) in
length-grouped batches, the validation pairs (teacher-forced loss) and the validation images
(decoded). Under ``torchrun`` each rank gets its share of every global batch and of the images."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

from torch.utils.data import DataLoader

from ..data.box_targets import BoxTargets, ensure_box_targets
from ..data.loaders import (CaptionDataset, ImageDataset, LengthGroupedBatchSampler, SupervisedCaptionDataset,
                            collate_captions, collate_images, collate_supervised)
from ..metrics.cider import CiderD
from ..utils.distributed import Distributed

LOG = logging.getLogger(__name__)


@dataclass
class TrainingData:
    train_set: CaptionDataset
    sampler: LengthGroupedBatchSampler
    train_loader: DataLoader
    val_set: CaptionDataset
    val_loader: DataLoader
    val_images: DataLoader  # this rank's share of the validation images
    val_refs: dict[str, list[str]]
    cider: Optional[CiderD] = None  # the self-critical reward (train references)
    box_targets: Optional[BoxTargets] = None  # train.attention_supervision: the train split's (data.box_targets)


def build_training_data(cfg, dataset, stores: dict[str, Any], transform, dist: Distributed) -> TrainingData:
    vocab, workers, batch = dataset.vocab, cfg.data.num_workers, cfg.train.batch_size
    deal = dict(rank=dist.rank, world=dist.world)
    train_set = CaptionDataset(dataset, "train", vocab, cfg.data.max_caption_length, stores["train"], transform)
    val_set = CaptionDataset(dataset, "val", vocab, cfg.data.max_caption_length, stores["val"], transform)
    captions = partial(collate_captions, pad_id=vocab.pad_id)
    cider, targets, items, collate_train = None, None, train_set, captions
    if cfg.train.attention_supervision:  # built once (rank 0 first), then read from the cache
        targets = dist.main_first(lambda: ensure_box_targets(dataset, "train", cfg.encoder, cfg.data.entities_dir,
                                                             progress=dist.main))
        LOG.info("attention supervision: %s", ", ".join(f"{k} {v}" for k, v in targets.summary.items()))
        items = SupervisedCaptionDataset(train_set, targets)  # (image, caption, targets (T, L))
        collate_train = partial(collate_supervised, pad_id=vocab.pad_id)
    if cfg.train.objective == "scst":  # one item per image: its captions are the reward's references
        train_images = ImageDataset(dataset, "train", stores["train"], transform)
        sampler = LengthGroupedBatchSampler([1] * len(train_images), batch, cfg.seed, **deal)
        train_loader = DataLoader(train_images, batch_sampler=sampler, num_workers=workers,
                                  collate_fn=collate_images, persistent_workers=workers > 0)
        cider = CiderD({im.image_id: [" ".join(t) for t in im.tokens] for im in dataset.split("train")})
    else:
        sampler = LengthGroupedBatchSampler(train_set.lengths, batch, cfg.seed, **deal)
        train_loader = DataLoader(items, batch_sampler=sampler, num_workers=workers, collate_fn=collate_train,
                                  persistent_workers=workers > 0)
    val_loader = DataLoader(val_set, batch_sampler=LengthGroupedBatchSampler(val_set.lengths, batch, cfg.seed, **deal),
                            num_workers=workers, collate_fn=captions)
    images = ImageDataset(dataset, "val", stores["val"], transform, cfg.train.val_max_images)
    images.image_ids = dist.share(images.image_ids)
    val_images = DataLoader(images, batch_size=batch, num_workers=workers, collate_fn=collate_images)
    return TrainingData(train_set, sampler, train_loader, val_set, val_loader, val_images,
                        dataset.references("val"), cider, targets)
