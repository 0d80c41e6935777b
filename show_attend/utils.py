"""Small shared helpers: seeding, device choice, run folders."""
from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use device=cpu or auto")
    return device


def new_run_dir(output_dir: str | Path, name: str) -> Path:
    """``output_dir/name``, or ``output_dir/name-YYYYmmdd-HHMMSS`` if that already holds a run."""
    run = Path(output_dir) / name
    if run.exists() and any(run.iterdir()):
        run = Path(output_dir) / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    run.mkdir(parents=True, exist_ok=True)
    return run
