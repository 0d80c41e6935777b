"""Timing and the machine: one timer for every measurement, and what the hardware offers."""
from __future__ import annotations

import platform
import resource
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..utils.runtime import cpu_flags


def timeit(fn: Callable[[], Any], device: torch.device, warmup: int = 1, iters: int = 3) -> float:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then the mean of ``iters`` timed ones
    (CUDA synchronised before and after)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / max(iters, 1)


def peak_host_mib() -> float:
    """The process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_device_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def cpu_bf16_support() -> dict[str, Any]:
    """Which bf16 matrix instructions this CPU has (from /proc/cpuinfo) and what torch dispatches to."""
    flags = cpu_flags()
    isa = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]
    return {"cpu_flags_bf16": [f for f in isa if "bf16" in f], "cpu_isa": isa,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
                            (platform.processor() or platform.machine() or "cpu"),
                            "torch": torch.__version__, "threads": torch.get_num_threads(),
                            "date": time.strftime("%Y-%m-%d")}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cpu":
        info.update(cpu_bf16_support())
    return info
