"""Training with teacher forcing: ``train(cfg)`` writes one run folder and returns its path.

    runs/<name>/config.yaml      the resolved config
    runs/<name>/vocab.json       the vocabulary
    runs/<name>/last.pt          checkpoint after the latest epoch (resume from it)
    runs/<name>/best.pt          checkpoint with the best decoded validation score (train.val_metric)
    runs/<name>/history.jsonl    one JSON row per epoch (losses, learning rate, validation metrics)
    runs/<name>/tb/              TensorBoard: losses, lr, gradient norm, metrics, samples, heatmaps
    runs/<name>/curves.png       loss, metric and learning-rate curves

Validation decodes the validation split (greedy or a small beam) and scores it with pycocoevalcap,
as tools/evaluate.py does; the teacher-forced validation loss is logged too, and named so.
"""
from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from ..checkpoint import init_weights_from, load_checkpoint, load_weights, rng_state, save_checkpoint, set_rng_state
from ..config import RESUME_MAY_CHANGE, Config, config_from_dict, refuse_changes, save_config
from ..data.features import ensure_features
from ..data.prepare import PreparedDataset, format_summary, prepare_dataset
from ..data.transforms import ImageTransform
from ..evaluation.evaluate import captions_of, decode_loader, score
from ..metrics.names import VALIDATION_METRICS
from ..model.decoder import AttentionDecoder, build_decoder, count_parameters
from ..model.decoding import Decoded
from ..model.encoder import GridEncoder, build_encoder
from ..model.losses import HardAttentionBound, caption_loss
from ..model.specs import feature_dim
from ..utils.files import json_safe, remove_stale_temporaries
from ..utils.distributed import NullWriter, from_environment, wrap
from ..utils.runtime import (StopRequest, eval_mode, new_run_dir, resolve_device, resolve_precision,
                             seed_everything)
from .data import build_training_data
from .logs import epoch_line, log_attention, log_samples
from .scst import scst_loss
from .supervision import AttentionSupervision, check_supervision
from .state import NonFiniteLossError, RunState, TrainingInterrupted, make_scheduler, metric_is_better

LOG = logging.getLogger(__name__)
_TB_NAMES = {"ce": "cross_entropy", "reward": "scst_reward_cider_d", "baseline": "scst_baseline_cider_d"}


class Trainer:
    def __init__(self, cfg: Config, run_dir: Optional[Path] = None, progress: bool = True,
                 dataset: Optional[PreparedDataset] = None, resume_from: Optional[dict[str, Any]] = None):
        """``resume_from``: the checkpoint a resumed run continues (its settings and vocabulary are
        checked against this run's before anything is written)."""
        if cfg.train.epochs < 1:
            raise ValueError(f"train.epochs is {cfg.train.epochs}: nothing to train")
        check_supervision(cfg)  # before any work: train.attention_supervision needs data.entities_dir
        if resume_from is not None:
            refuse_changes(config_from_dict(resume_from["config"]), cfg, RESUME_MAY_CHANGE, "--resume")
            if resume_from["epoch"] >= cfg.train.epochs and not resume_from.get("batch_in_epoch"):
                raise ValueError(f"the run already finished epoch {resume_from['epoch']} of {cfg.train.epochs}: "
                                 f"nothing to train; raise it with --set train.epochs=N to continue")
        self.cfg = cfg
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.dist = from_environment(self.device)  # torchrun: one process per device; else single
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if self.dist.enabled and cfg.train.objective == "scst":
            raise ValueError("self-critical training (train.objective=scst) runs in one process; drop torchrun")
        self.progress = progress and self.dist.main
        main = self.dist.main  # rank 0 alone writes the run folder
        self.run_dir = Path(self.dist.broadcast(str(run_dir or new_run_dir(cfg.output_dir, cfg.name)) if main else None))
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)  # left by a save that was killed
        self.dataset = dataset or self.dist.main_first(lambda: prepare_dataset(cfg.data, progress=self.progress))
        self.vocab = self.dataset.vocab
        if resume_from is not None and resume_from["vocab"] != self.vocab.to_dict():
            raise ValueError(f"--resume: the data now gives another vocabulary ({len(self.vocab)} words) than the "
                             f"run was trained with ({len(resume_from['vocab']['itos'])}); the checkpoint's "
                             "word ids would mean other words. Point data.* at the run's data again")
        LOG.info("%s", format_summary(self.dataset.summary, self.dataset.problems(), max_listed=5,
                                      skipped_json=self.dataset.root / "skipped.json"))  # what was skipped
        self.state = RunState()
        self.stop = StopRequest()  # Ctrl-C / SIGTERM during fit(): save at the next step, then stop

        # ---- encoder: run once into the feature cache, or every step (fine-tuning) ----
        fine_tune = cfg.encoder.fine_tune_last_block
        self.use_cache = cfg.data.use_feature_cache and not fine_tune
        encoder = build_encoder(cfg.encoder)
        if encoder.weights_label.startswith("none") and cfg.encoder.weights == "imagenet":
            cfg.encoder.weights = "none"  # record what was really used (offline fallback; precision=auto)
        self.encoder_fingerprint = None if cfg.encoder.weights == "none" else encoder.weights_fingerprint()
        cfg.encoder.precision = resolve_precision(cfg.encoder.precision, self.device)
        transform = None
        if self.use_cache:
            self.encoder: Optional[GridEncoder] = None
            self.stores = self.dist.main_first(lambda: {split: ensure_features(
                self.dataset, cfg.encoder, split, self.device, cfg.data.num_workers, self.progress, encoder=encoder)
                for split in ("train", "val")})
            del encoder
        else:
            self.encoder = encoder.to(self.device)
            self.stores = {"train": None, "val": None}
            transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode, cfg.encoder.name)

        # ---- data: length-grouped batches, each global batch dealt out across the ranks ----
        self.data = build_training_data(cfg, self.dataset, self.stores, transform, self.dist)
        self.supervision = AttentionSupervision.for_run(cfg, self.data, self.vocab.pad_id)  # None: off

        # ---- model and optimisation ----
        self.decoder: AttentionDecoder = build_decoder(cfg.model, len(self.vocab), cfg.encoder.grid_size,
                                                       feature_dim(cfg.encoder)).to(self.device)
        self.hard_bound = HardAttentionBound.for_decoder(self.decoder, cfg.train)  # hard attention's REINFORCE terms
        if cfg.train.init_from:  # start from another run's weights (e.g. self-critical after cross-entropy)
            init_weights_from(cfg.train.init_from, cfg, self.vocab, self.decoder, self.encoder, self.device)
        groups = [{"params": [p for p in self.decoder.parameters() if p.requires_grad], "lr": cfg.optim.lr}]
        if self.encoder is not None and fine_tune:
            groups.append({"params": [p for p in self.encoder.parameters() if p.requires_grad],
                           "lr": cfg.optim.encoder_lr})
        self.optimizer = torch.optim.Adam(groups, weight_decay=cfg.optim.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.model = wrap(self.decoder, self.dist, self.device)  # DDP under torchrun: gradients averaged
        self.writer = SummaryWriter(str(self.run_dir / "tb")) if main else NullWriter()
        if main:
            save_config(cfg, self.run_dir / "config.yaml")
            self.vocab.save(self.run_dir / "vocab.json")

    # ------------------------------------------------------------------ setup helpers
    def _autocast(self):
        if self.cfg.train.amp == "bf16":  # CUDA, or a CPU with bf16 instructions (BENCHMARKS.md)
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
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
            "encoder_fingerprint": self.encoder_fingerprint, "config": self.cfg.to_dict(), "vocab": self.vocab.to_dict(),
            "epoch": self.state.epoch, "step": self.state.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": rng_state(), "batch_in_epoch": self.state.batch_in_epoch,
            "skipped_nonfinite": self.state.skipped_nonfinite,
            "best": {"metric": self.cfg.train.val_metric, "value": self.state.best_value,
                     "epoch": self.state.best_epoch, "bad_validations": self.state.bad_validations},
        }

    def resume(self, path: str | Path, ckpt: Optional[dict[str, Any]] = None) -> None:
        """Continue from a ``last.pt`` (or a run folder): weights, optimizer, scheduler, counters, RNG.
        ``ckpt``: that checkpoint, already read."""
        path = Path(path)
        ckpt = ckpt or load_checkpoint(path / "last.pt" if path.is_dir() else path, map_location=self.device)
        load_weights(ckpt, self.decoder, self.encoder)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        # a learning rate changed on resume applies from here on (the loaded state holds the old one)
        before = config_from_dict(ckpt["config"]).optim
        for i, (was, now) in enumerate(((before.lr, self.cfg.optim.lr), (before.encoder_lr, self.cfg.optim.encoder_lr))):
            if was != now and i < len(self.optimizer.param_groups):
                self.optimizer.param_groups[i]["lr"] = self.optimizer.param_groups[i]["initial_lr"] = now
                if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
                    self.scheduler.base_lrs[i] = now
                LOG.info("resume: learning rate of parameter group %d changed from %g to %g", i, was, now)
        best = ckpt.get("best") or {}
        self.state = RunState(ckpt["epoch"], ckpt["step"], best.get("value"), best.get("epoch", 0),
                              best.get("bad_validations", 0), ckpt.get("batch_in_epoch", 0),
                              ckpt.get("skipped_nonfinite", 0))
        set_rng_state(ckpt["rng"])
        LOG.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step)

    # ------------------------------------------------------------------ loops
    def _xe_step(self, images: torch.Tensor, captions: torch.Tensor, box_targets: Optional[torch.Tensor] = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher forcing: the loss of one batch of (image, caption) pairs (and attention targets (B, T, L))."""
        captions = captions.to(self.device, non_blocking=True)  # (B, T+1)
        with self._autocast():
            output = self.model(self._annotations(images), captions)  # logits (B, T, K)
            loss, parts = caption_loss(output, captions, self.vocab.pad_id, self.cfg.train.alpha_c,
                                       self.cfg.train.label_smoothing, self.hard_bound)
        # under DDP: each rank's per-token mean, weighted so that the average is the global batch's
        loss = loss * self.dist.token_weight(parts.pop("tokens"))
        if self.supervision is not None:
            extra, supervised = self.supervision.term(output, box_targets, self.dist)
            loss, parts = loss + extra, {**parts, **supervised}
        return loss, parts

    def _scst_step(self, images: torch.Tensor, image_ids: list[str]) -> tuple[torch.Tensor, dict[str, float]]:
        """Self-critical: the loss of one batch of images (sampled captions, CIDEr-D reward)."""
        t = self.cfg.train
        # By default the sampled policy is the test-time model (no dropout), like the greedy baseline;
        # train.scst_dropout samples with dropout on.
        with self._autocast():
            annotations = self._annotations(images)
        with eval_mode(self.decoder, training=t.scst_dropout), self._autocast():
            loss, stats = scst_loss(self.decoder, annotations, image_ids, self.data.cider, self.vocab,
                                    t.scst_samples, t.scst_baseline, self.cfg.decode.max_length,
                                    self.cfg.decode.suppress_unk)
        parts = {"reward": stats.reward, "baseline": stats.baseline, "sample_length": stats.sample_length}
        if self.supervision is not None:  # an extra teacher-forced pass of the boxed references
            with self._autocast():
                extra, supervised = self.supervision.reference_pass(self.decoder, annotations, image_ids)
            loss, parts = loss + extra, {**parts, **supervised}
        return loss, parts

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self.decoder.train()
        self.data.sampler.set_epoch(epoch, skip=self.state.batch_in_epoch)  # after an interruption: where it stopped
        step_fn = self._scst_step if cfg.train.objective == "scst" else self._xe_step
        totals: dict[str, float] = {}
        batches = 0
        bar = tqdm(self.data.train_loader, desc=f"epoch {epoch}/{cfg.train.epochs}", disable=not self.progress,
                   leave=False)
        for batch in bar:  # (images, captions[, box targets]) or (images, image ids)
            loss, parts = step_fn(*batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
            loss_value = float(loss.detach())
            self.state.batch_in_epoch += 1
            bad, stop = self.dist.sum(not (math.isfinite(loss_value) and math.isfinite(grad_norm)),
                                      self.stop.requested)  # every rank takes the same path
            if bad:
                self._non_finite(epoch, loss_value, grad_norm)  # raises, or skips this batch
                continue
            self.optimizer.step()
            self.state.step += 1
            batches += 1
            parts = {"loss": loss_value, **parts}
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items() if k in ("loss", "ce", "reward", "supervision")})
            if self.state.step % cfg.train.log_every == 0 or self.state.step == 1:
                for name, value in parts.items():
                    self.writer.add_scalar(f"train/{_TB_NAMES.get(name, name)}", value, self.state.step)
                self.writer.add_scalar("train/grad_norm", grad_norm, self.state.step)
                self.writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.state.step)
            if cfg.train.max_steps and self.state.step >= cfg.train.max_steps:
                break
            if stop:
                self._save_interrupted(epoch)
        self.state.batch_in_epoch = 0
        return {f"train_{k}": v / max(batches, 1) for k, v in totals.items()}

    def _non_finite(self, epoch: int, loss: float, grad_norm: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        where = f"epoch {epoch}, batch {self.state.batch_in_epoch} (step {self.state.step + 1})"
        if self.state.skipped_nonfinite < self.cfg.train.skip_nonfinite:
            self.state.skipped_nonfinite += 1
            LOG.warning("%s: loss %s, gradient norm %s: batch skipped (%d of train.skip_nonfinite=%d)", where,
                        loss, grad_norm, self.state.skipped_nonfinite, self.cfg.train.skip_nonfinite)
            return
        raise NonFiniteLossError.at(where, loss, grad_norm, self.run_dir)

    def _save_interrupted(self, epoch: int) -> None:
        """Save where training stands (mid-epoch), so that --resume continues at the next batch."""
        if self.dist.main:
            save_checkpoint(self.run_dir / "last.pt", self.checkpoint_payload())
        self.writer.close()
        raise TrainingInterrupted(
            f"stopped in epoch {epoch} after batch {self.state.batch_in_epoch} (step {self.state.step}); "
            f"saved {self.run_dir / 'last.pt'}; continue with: show-attend train --resume {self.run_dir}")

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Teacher-forced cross-entropy on the validation split (NOT a decoding metric)."""
        total, tokens = 0.0, 0
        with eval_mode(self.decoder):
            for images, captions in self.data.val_loader:
                captions = captions.to(self.device)
                with self._autocast():
                    output = self.decoder(self._annotations(images), captions)
                    _, parts = caption_loss(output, captions, self.vocab.pad_id, 0.0)
                total += parts["ce"] * parts["tokens"]
                tokens += parts["tokens"]
        total, tokens = self.dist.sum(total, tokens)  # each rank had its share of the batches
        return total / max(tokens, 1)

    def validate_decoded(self) -> tuple[dict[str, float], dict[str, Decoded]]:
        """Decode the validation split and score it (pycocoevalcap), as evaluation does."""
        cfg = self.cfg
        decoded = decode_loader(self.decoder, self.data.val_images, self.vocab, self.device, encoder=self.encoder,
                                beam_size=cfg.train.val_beam_size, max_length=cfg.decode.max_length,
                                length_penalty=cfg.decode.length_penalty, suppress_unk=cfg.decode.suppress_unk)
        decoded = self.dist.gather_dicts(decoded)  # each rank decoded its share of the images
        metrics = VALIDATION_METRICS + (("METEOR",) if cfg.train.val_metric == "METEOR" else ())
        scores = dict(score(decoded, self.data.val_refs, metrics=metrics).scores) if self.dist.main else None
        return self.dist.broadcast(scores), decoded  # scored once, the same decisions on every rank

    def fit(self) -> Path:
        LOG.info("decoder: %.2fM trainable parameters; %d train captions, %d val images; device %s",
                 count_parameters(self.decoder) / 1e6, len(self.data.train_set), len(self.data.val_images.dataset),
                 self.device)
        with self.stop:
            return self._fit()

    def _fit(self) -> Path:
        cfg = self.cfg
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
                    log_samples(self.writer, captions_of(decoded), self.data.val_refs, self.state.step)
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
            if self.state.skipped_nonfinite:
                row["skipped_nonfinite"] = self.state.skipped_nonfinite
            if self.dist.main:
                self._save_epoch(row, improved, history_path)
            patience = cfg.train.early_stop_patience
            if patience and self.state.bad_validations >= patience:
                LOG.info("early stopping: no %s improvement in %d validations", cfg.train.val_metric, patience)
                break
            if cfg.train.max_steps and self.state.step >= cfg.train.max_steps:
                break
        self.writer.close()
        self.dist.barrier()
        if not self.dist.main:
            return self.run_dir
        if not (self.run_dir / "best.pt").exists() and (self.run_dir / "last.pt").exists():
            save_checkpoint(self.run_dir / "best.pt", load_checkpoint(self.run_dir / "last.pt"))
        if history_path.is_file():
            from ..viz.curves import plot_run

            plot_run(self.run_dir)  # curves.png: losses, metrics, learning rate
        return self.run_dir

    def _save_epoch(self, row: dict[str, Any], improved: bool, history_path: Path) -> None:
        payload = self.checkpoint_payload()
        save_checkpoint(self.run_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.run_dir / "best.pt", payload)
        with history_path.open("a") as fh:
            fh.write(json.dumps(json_safe(row), allow_nan=False) + "\n")
        message = epoch_line(row, self.cfg.train.val_metric, self.state.best_value, self.state.best_epoch)
        if self.progress:
            tqdm.write(message)
        LOG.info(message)


def train(cfg: Config, resume: Optional[str | Path] = None, progress: bool = True) -> Path:
    """Train (or resume) a run and return its folder. A resume is refused, before anything is
    written, when the settings or the data would change what its checkpoint means."""
    if resume:
        resume = Path(resume)
        last = resume / "last.pt" if resume.is_dir() else resume
        payload = load_checkpoint(last)
        trainer = Trainer(cfg, run_dir=last.parent, progress=progress, resume_from=payload)
        trainer.resume(last, payload)
    else:
        trainer = Trainer(cfg, progress=progress)
    try:
        return trainer.fit()
    finally:
        trainer.dist.close()
