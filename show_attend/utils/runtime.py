"""Run-time helpers: seeding, device choice, run folders, and ``eval_mode``."""
from __future__ import annotations

import random
import signal
import sys
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

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


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``auto`` -> ``bf16`` where bf16 matrix products run in hardware (a CUDA GPU that supports
    them, or a CPU with AMX or AVX512-BF16: 2-3x the fp32 images/s, BENCHMARKS.md), else ``fp32``
    (emulated bf16 would be slower than fp32). ``fp32`` and ``bf16`` stay as they are."""
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "fp32"


def new_run_dir(output_dir: str | Path, name: str) -> Path:
    """``output_dir/name``, or ``output_dir/name-YYYYmmdd-HHMMSS`` if that already holds a run."""
    run = Path(output_dir) / name
    if run.exists() and any(run.iterdir()):
        run = Path(output_dir) / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    run.mkdir(parents=True, exist_ok=True)
    return run


@contextmanager
def eval_mode(*modules: Optional[torch.nn.Module], training: bool = False) -> Iterator[None]:
    """Put ``modules`` in eval mode (or ``train(training)``) and restore each one's own mode after.

    ``None`` entries are skipped, so an optional encoder can be passed as it is.
    """
    present = [m for m in modules if m is not None]
    before = [m.training for m in present]
    for m in present:
        m.train(training)
    try:
        yield
    finally:
        for m, mode in zip(present, before):
            m.train(mode)


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, not a traceback.

    Inside ``with stop:`` the first signal only sets ``stop.requested`` (the loop saves and leaves);
    it also puts the previous handlers back, so a second Ctrl-C stops at once. Outside the main
    thread (where handlers cannot be installed) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.requested = True
        self._restore()
        print(f"\n{signal.Signals(signum).name}: stopping at the next step boundary, after saving "
              "(press Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()
