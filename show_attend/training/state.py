"""A run's counters, its stops, and its learning-rate schedule."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch


@dataclass
class RunState:
    epoch: int = 0  # last completed epoch
    step: int = 0  # optimizer steps taken
    best_value: Optional[float] = None
    best_epoch: int = 0
    bad_validations: int = 0
    batch_in_epoch: int = 0  # batches of epoch + 1 already trained (non-zero after an interruption)
    skipped_nonfinite: int = 0  # batches skipped for a non-finite loss or gradient (train.skip_nonfinite)


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""

    @classmethod
    def at(cls, where: str, loss: float, grad_norm: float, run_dir: Path) -> "NonFiniteLossError":
        kept = [str(run_dir / n) for n in ("best.pt", "last.pt") if (run_dir / n).is_file()]
        return cls(f"{where}: the loss is {loss} and the gradient norm {grad_norm}; training stopped. "
                   + (f"The last good checkpoints are kept: {', '.join(kept)}. " if kept else
                      "No epoch finished, so there is no checkpoint. ")
                   + "Lower optim.lr, or allow a few such batches with --set train.skip_nonfinite=N")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: a resumable checkpoint was saved at a step boundary."""


def metric_is_better(metric: str, new: float, old: Optional[float]) -> bool:
    if old is None:
        return True
    return new < old if metric == "loss" else new > old


def make_scheduler(optimizer: torch.optim.Optimizer, cfg):
    """The learning-rate schedule of ``cfg.optim`` (None: constant)."""
    o, epochs = cfg.optim, cfg.train.epochs
    if o.scheduler == "plateau":
        mode = "min" if cfg.train.val_metric == "loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=o.gamma,
                                                          patience=o.plateau_patience)
    if o.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if o.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=o.step_size, gamma=o.gamma)
    return None
