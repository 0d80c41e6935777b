"""Training with teacher forcing: ``train(cfg)`` writes one run folder and returns its path.

    runs/<name>/config.yaml      the resolved config
    runs/<name>/vocab.json       the vocabulary
    runs/<name>/last.pt          checkpoint after the latest epoch (resume from it)
    runs/<name>/best.pt          checkpoint with the best decoded validation score (train.val_metric)
    runs/<name>/history.jsonl    one JSON row per epoch (losses, learning rate, validation metrics)
    runs/<name>/tb/              TensorBoard events (loss, learning rate, gradient norm, metrics, samples,
                                 attention heatmaps of a few validation images)
    runs/<name>/curves.png       loss, metric and learning-rate curves

Validation decodes the validation split (greedy or a small beam) and scores it with pycocoevalcap,
the same code as tools/evaluate.py; the teacher-forced validation loss is logged too, and named so.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, load_weights, rng_state, save_checkpoint, set_rng_state
from ..metrics.cider import CiderD
from ..config import Config, config_from_dict, save_config
from ..data.loaders import (CaptionDataset, ImageDataset, LengthGroupedBatchSampler, collate_captions,
                           collate_images)
from ..data.prepare import PreparedDataset, format_summary, prepare_dataset
from ..model.decoder import AttentionDecoder, build_decoder, count_parameters
from ..model.decoding import Decoded
from ..model.encoder import VGG16Encoder, build_encoder
from ..evaluation.evaluate import captions_of, decode_loader, score
from ..data.features import ensure_features
from ..model.losses import caption_loss
from .scst import scst_loss
from ..data.transforms import ImageTransform
from ..metrics.names import VALIDATION_METRICS
from .logs import epoch_line, log_attention, log_samples
from ..utils.files import json_safe
from ..utils.runtime import eval_mode, new_run_dir, resolve_device, seed_everything

LOG = logging.getLogger(__name__)
_TB_NAMES = {"ce": "cross_entropy", "reward": "scst_reward_cider_d", "baseline": "scst_baseline_cider_d"}


@dataclass
class RunState:
    epoch: int = 0  # last completed epoch
    step: int = 0  # optimizer steps taken
    best_value: Optional[float] = None
    best_epoch: int = 0
    bad_validations: int = 0


def metric_is_better(metric: str, new: float, old: Optional[float]) -> bool:
    if old is None:
        return True
    return new < old if metric == "loss" else new > old


class Trainer:
    def __init__(self, cfg: Config, run_dir: Optional[Path] = None, progress: bool = True,
                 dataset: Optional[PreparedDataset] = None):
        self.cfg = cfg
        self.progress = progress
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.run_dir = Path(run_dir) if run_dir else new_run_dir(cfg.output_dir, cfg.name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset or prepare_dataset(cfg.data, progress=progress)
        self.vocab = self.dataset.vocab
        LOG.info("%s", format_summary(self.dataset.summary))  # what was read, and what was skipped
        self.state = RunState()

        # ---- encoder: run once into the feature cache, or every step (fine-tuning) ----
        fine_tune = cfg.encoder.fine_tune_last_block
        self.use_cache = cfg.data.use_feature_cache and not fine_tune
        encoder = build_encoder(cfg.encoder)
        if encoder.weights_label.startswith("none") and cfg.encoder.weights == "imagenet":
            cfg.encoder.weights = "none"  # record what was really used (offline fallback)
        transform = None
        if self.use_cache:
            self.encoder: Optional[VGG16Encoder] = None
            self.stores = {split: ensure_features(self.dataset, cfg.encoder, split, self.device,
                                                  cfg.data.num_workers, progress, encoder=encoder)
                           for split in ("train", "val")}
            del encoder
        else:
            self.encoder = encoder.to(self.device)
            self.stores = {"train": None, "val": None}
            transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode)

        # ---- data ----
        self.train_set = CaptionDataset(self.dataset, "train", self.vocab, cfg.data.max_caption_length,
                                        self.stores["train"], transform)
        self.val_set = CaptionDataset(self.dataset, "val", self.vocab, cfg.data.max_caption_length,
                                      self.stores["val"], transform)
        pad = self.vocab.pad_id
        workers = cfg.data.num_workers
        if cfg.train.objective == "scst":  # one item per image: its captions are the reward's references
            train_images = ImageDataset(self.dataset, "train", self.stores["train"], transform)
            self.sampler = LengthGroupedBatchSampler([1] * len(train_images), cfg.train.batch_size, cfg.seed)
            self.train_loader = DataLoader(train_images, batch_sampler=self.sampler, num_workers=workers,
                                           collate_fn=collate_images, persistent_workers=workers > 0)
            self.cider = CiderD({im.image_id: [" ".join(t) for t in im.tokens]
                                 for im in self.dataset.split("train")})
        else:
            self.sampler = LengthGroupedBatchSampler(self.train_set.lengths, cfg.train.batch_size, cfg.seed)
            self.train_loader = DataLoader(self.train_set, batch_sampler=self.sampler, num_workers=workers,
                                           collate_fn=partial(collate_captions, pad_id=pad),
                                           persistent_workers=workers > 0)
        val_sampler = LengthGroupedBatchSampler(self.val_set.lengths, cfg.train.batch_size, cfg.seed)
        self.val_loader = DataLoader(self.val_set, batch_sampler=val_sampler, num_workers=workers,
                                     collate_fn=partial(collate_captions, pad_id=pad))
        self.val_images = DataLoader(
            ImageDataset(self.dataset, "val", self.stores["val"], transform, cfg.train.val_max_images),
            batch_size=cfg.train.batch_size, num_workers=workers, collate_fn=collate_images)
        self.val_refs = self.dataset.references("val")

        # ---- model and optimisation ----
        self.decoder: AttentionDecoder = build_decoder(cfg.model, len(self.vocab), cfg.encoder.grid_size).to(self.device)
        if cfg.train.init_from:
            self._init_from(cfg.train.init_from)
        groups = [{"params": [p for p in self.decoder.parameters() if p.requires_grad], "lr": cfg.optim.lr}]
        if self.encoder is not None and fine_tune:
            groups.append({"params": [p for p in self.encoder.parameters() if p.requires_grad],
                           "lr": cfg.optim.encoder_lr})
        self.optimizer = torch.optim.Adam(groups, weight_decay=cfg.optim.weight_decay)
        self.scheduler = self._make_scheduler()
        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        save_config(cfg, self.run_dir / "config.yaml")
        self.vocab.save(self.run_dir / "vocab.json")

    # ------------------------------------------------------------------ setup helpers
    def _make_scheduler(self):
        o, epochs = self.cfg.optim, self.cfg.train.epochs
        if o.scheduler == "plateau":
            mode = "min" if self.cfg.train.val_metric == "loss" else "max"
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode=mode, factor=o.gamma,
                                                              patience=o.plateau_patience)
        if o.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(epochs, 1))
        if o.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=o.step_size, gamma=o.gamma)
        return None

    def _init_from(self, path: str | Path) -> None:
        """Start from another run's weights (e.g. self-critical training after cross-entropy)."""
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt["vocab"] != self.vocab.to_dict():
            raise ValueError(f"train.init_from={path}: its vocabulary differs from this dataset's "
                             "(same data settings and min_word_count needed)")
        # (read through config_from_dict: a key that an older checkpoint lacks takes its default)
        theirs, ours = config_from_dict(ckpt["config"]).to_dict()["model"], self.cfg.to_dict()["model"]
        differ = [f"model.{k}: {theirs[k]!r} there, {ours[k]!r} here" for k in ours if theirs[k] != ours[k]]
        if differ:
            raise ValueError(f"train.init_from={path}: its decoder was built with other settings ("
                             + "; ".join(differ) + "); set them as that run did")
        load_weights(ckpt, self.decoder, self.encoder)
        LOG.info("initialised the weights from %s (epoch %s)", path, ckpt.get("epoch"))

    def _autocast(self):
        if self.cfg.train.amp == "bf16" and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _annotations(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.encoder is None:
            return images.float()  # cached (B, L, D)
        return self.encoder(images)  # (B, 3, S, S) -> (B, L, D)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_payload(self) -> dict[str, Any]:
        enc_state = None
        if self.encoder is not None and self.cfg.encoder.fine_tune_last_block:
            enc_state = self.encoder.block5_state()
        return {
            "decoder": self.decoder.state_dict(), "encoder_block5": enc_state,
            "config": self.cfg.to_dict(), "vocab": self.vocab.to_dict(),
            "epoch": self.state.epoch, "step": self.state.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": rng_state(),
            "best": {"metric": self.cfg.train.val_metric, "value": self.state.best_value,
                     "epoch": self.state.best_epoch, "bad_validations": self.state.bad_validations},
        }

    def resume(self, path: str | Path) -> None:
        """Continue from a ``last.pt`` (or a run folder): weights, optimizer, scheduler, counters, RNG."""
        path = Path(path)
        ckpt = load_checkpoint(path / "last.pt" if path.is_dir() else path, map_location=self.device)
        load_weights(ckpt, self.decoder, self.encoder)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        best = ckpt.get("best") or {}
        self.state = RunState(ckpt["epoch"], ckpt["step"], best.get("value"), best.get("epoch", 0),
                              best.get("bad_validations", 0))
        set_rng_state(ckpt["rng"])
        LOG.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step)

    # ------------------------------------------------------------------ loops
    def _xe_step(self, images: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher forcing: the loss of one batch of (image, caption) pairs."""
        captions = captions.to(self.device, non_blocking=True)  # (B, T+1)
        with self._autocast():
            output = self.decoder(self._annotations(images), captions)  # logits (B, T, K)
            loss, parts = caption_loss(output, captions, self.vocab.pad_id, self.cfg.train.alpha_c,
                                       self.cfg.train.label_smoothing)
        return loss, {"ce": parts["ce"], "attention_reg": parts["attention_reg"]}

    def _scst_step(self, images: torch.Tensor, image_ids: list[str]) -> tuple[torch.Tensor, dict[str, float]]:
        """Self-critical: the loss of one batch of images (sampled captions, CIDEr-D reward)."""
        t = self.cfg.train
        # By default the sampled policy is the test-time model (no dropout), like the greedy baseline;
        # train.scst_dropout samples with dropout on.
        with eval_mode(self.decoder, training=t.scst_dropout), self._autocast():
            loss, stats = scst_loss(self.decoder, self._annotations(images), image_ids, self.cider, self.vocab,
                                    t.scst_samples, t.scst_baseline, self.cfg.decode.max_length,
                                    self.cfg.decode.suppress_unk)
        return loss, {"reward": stats.reward, "baseline": stats.baseline, "sample_length": stats.sample_length}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self.decoder.train()
        self.sampler.set_epoch(epoch)
        step_fn = self._scst_step if cfg.train.objective == "scst" else self._xe_step
        totals: dict[str, float] = {}
        batches = 0
        bar = tqdm(self.train_loader, desc=f"epoch {epoch}/{cfg.train.epochs}", disable=not self.progress,
                   leave=False)
        for images, targets in bar:
            loss, parts = step_fn(images, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
            self.optimizer.step()
            self.state.step += 1
            batches += 1
            parts = {"loss": float(loss.detach()), **parts}
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items() if k in ("loss", "ce", "reward")})
            if self.state.step % cfg.train.log_every == 0 or self.state.step == 1:
                for name, value in parts.items():
                    self.writer.add_scalar(f"train/{_TB_NAMES.get(name, name)}", value, self.state.step)
                self.writer.add_scalar("train/grad_norm", grad_norm, self.state.step)
                self.writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.state.step)
            if cfg.train.max_steps and self.state.step >= cfg.train.max_steps:
                break
        return {f"train_{k}": v / max(batches, 1) for k, v in totals.items()}

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Teacher-forced cross-entropy on the validation split (NOT a decoding metric)."""
        total, tokens = 0.0, 0
        with eval_mode(self.decoder):
            for images, captions in self.val_loader:
                captions = captions.to(self.device)
                with self._autocast():
                    output = self.decoder(self._annotations(images), captions)
                    _, parts = caption_loss(output, captions, self.vocab.pad_id, 0.0)
                total += parts["ce"] * parts["tokens"]
                tokens += parts["tokens"]
        return total / max(tokens, 1)

    def validate_decoded(self) -> tuple[dict[str, float], dict[str, Decoded]]:
        """Decode the validation split and score it (pycocoevalcap), as evaluation does."""
        cfg = self.cfg
        decoded = decode_loader(self.decoder, self.val_images, self.vocab, self.device, encoder=self.encoder,
                                beam_size=cfg.train.val_beam_size, max_length=cfg.decode.max_length,
                                length_penalty=cfg.decode.length_penalty, suppress_unk=cfg.decode.suppress_unk)
        metrics = VALIDATION_METRICS + (("METEOR",) if cfg.train.val_metric == "METEOR" else ())
        report = score(decoded, self.val_refs, metrics=metrics)
        return dict(report.scores), decoded

    def fit(self) -> Path:
        cfg = self.cfg
        LOG.info("decoder: %.2fM trainable parameters; %d train captions, %d val images; device %s",
                 count_parameters(self.decoder) / 1e6, len(self.train_set), len(self.val_images.dataset),
                 self.device)
        history_path = self.run_dir / "history.jsonl"
        start = self.state.epoch + 1
        for epoch in range(start, cfg.train.epochs + 1):
            t0 = time.time()
            row: dict[str, Any] = {"epoch": epoch}
            row.update(self.train_epoch(epoch))
            row["val_loss_teacher_forced"] = self.validation_loss()
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            self.writer.add_scalar("val/loss_teacher_forced", row["val_loss_teacher_forced"], self.state.step)
            self.state.epoch = epoch
            improved = False
            validated = epoch % cfg.train.val_every == 0 or epoch == cfg.train.epochs
            if validated:
                if cfg.train.val_metric == "loss":
                    value = row["val_loss_teacher_forced"]
                else:
                    scores, decoded = self.validate_decoded()
                    row.update(scores)
                    for name, v in scores.items():
                        self.writer.add_scalar(f"val/{name}", v, self.state.step)
                    log_samples(self.writer, captions_of(decoded), self.val_refs, self.state.step)
                    log_attention(self.writer, decoded, self.dataset, self.cfg.encoder, self.state.step)
                    value = scores[cfg.train.val_metric]
                improved = metric_is_better(cfg.train.val_metric, value, self.state.best_value)
                if improved:
                    self.state.best_value, self.state.best_epoch = value, epoch
                    self.state.bad_validations = 0
                else:
                    self.state.bad_validations += 1
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(value)
            if self.scheduler is not None and not isinstance(self.scheduler,
                                                             torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step()
            row.update(step=self.state.step, seconds=round(time.time() - t0, 2), best_epoch=self.state.best_epoch)
            payload = self.checkpoint_payload()
            save_checkpoint(self.run_dir / "last.pt", payload)
            if improved:
                save_checkpoint(self.run_dir / "best.pt", payload)
            with history_path.open("a") as fh:
                fh.write(json.dumps(json_safe(row), allow_nan=False) + "\n")
            message = epoch_line(row, cfg.train.val_metric, self.state.best_value, self.state.best_epoch)
            if self.progress:
                tqdm.write(message)
            LOG.info(message)
            patience = cfg.train.early_stop_patience
            if patience and self.state.bad_validations >= patience:
                LOG.info("early stopping: no %s improvement in %d validations", cfg.train.val_metric, patience)
                break
            if cfg.train.max_steps and self.state.step >= cfg.train.max_steps:
                break
        if not (self.run_dir / "best.pt").exists() and (self.run_dir / "last.pt").exists():
            save_checkpoint(self.run_dir / "best.pt", load_checkpoint(self.run_dir / "last.pt"))
        self.writer.close()
        if history_path.is_file():
            from ..viz.curves import plot_run

            plot_run(self.run_dir)  # curves.png: losses, metrics, learning rate
        return self.run_dir


def train(cfg: Config, resume: Optional[str | Path] = None, progress: bool = True) -> Path:
    """Train (or resume) a run and return its folder."""
    trainer = Trainer(cfg, run_dir=Path(resume) if resume and Path(resume).is_dir() else
                      (Path(resume).parent if resume else None), progress=progress)
    if resume:
        trainer.resume(resume)
    return trainer.fit()
