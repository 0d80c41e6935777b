"""Several processes, as ``torchrun`` starts them: the process group, and what training and
feature extraction need of it (torch.distributed only; nothing else of the package).

Training runs with PyTorch's DistributedDataParallel:

    torchrun --nproc_per_node=N tools/train.py --config ...      (gloo on CPUs, NCCL on GPUs)

One process per device. Every global batch of the length-grouped sampler (``train.batch_size``
captions) is dealt out across the ranks, so N processes train on the same batches as one process
would, each on 1/N of every batch; DDP averages the gradients. Rank 0 alone writes the run folder
(config, checkpoints, history, TensorBoard, curves) and prints; validation is decoded on every rank
(each a share of the images), gathered, and scored once; the decisions that follow from it (best
checkpoint, learning-rate schedule, early stopping, a stop request, a non-finite loss) are shared,
so every rank takes the same path. Feature extraction (``torchrun ... tools/extract_features.py``)
gives each rank every world-th image and rank 0 writes the one cache. Without ``WORLD_SIZE`` > 1
all of this is a no-op.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_dicts(self, part: dict) -> dict:
        """The union of every rank's dict, on every rank."""
        if not self.enabled:
            return part
        parts: list[Optional[dict]] = [None] * self.world
        dist.all_gather_object(parts, part)
        out: dict = {}
        for p in parts:
            out.update(p or {})
        return out

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any rank."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device_of_backend())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over the ranks."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device_of_backend())
        dist.all_reduce(t)
        return t.tolist()

    def device_of_backend(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def token_weight(self, tokens: int) -> float:
        """The factor that turns this rank's per-token mean loss into its part of the global batch's
        per-token mean (DDP averages over ranks): tokens here x ranks / tokens in the global batch."""
        if not self.enabled:
            return 1.0
        return tokens * self.world / max(self.sum(float(tokens))[0], 1.0)

    def share(self, items: list) -> list:
        """This rank's share of a list (every world-th item, from its rank)."""
        return items[self.rank::self.world] if self.enabled else items

    def main_first(self, fn):
        """``fn()`` on rank 0, then on the others (which then read what rank 0 prepared or cached)."""
        if self.main:
            result = fn()
            self.barrier()
            return result
        self.barrier()
        return fn()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def from_environment(device: torch.device) -> Distributed:
    """Join the process group ``torchrun`` describes in the environment (or stay single)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return Distributed(rank, world, local_rank)


class NullWriter:
    """A SummaryWriter that writes nothing (ranks other than 0)."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def wrap(module: torch.nn.Module, dist_: Distributed, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when there are several ranks (else itself)."""
    if not dist_.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
