"""Distributed training (DDP, gloo on the CPU): 2 processes train as 1 does with the same global batch.

Each process takes half of every length-grouped global batch; its per-token loss is weighted by its
share of the batch's tokens and DDP averages the gradients, so the gradient is the 1-process one up
to float summation order, which Adam's normalisation amplifies where second moments are tiny.
Measured here: largest parameter difference 4.0e-4 after 8 steps (lr 1e-3); stated tolerance 2e-3.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from conftest import REPO, TINY, tiny_config

TOLERANCE = 2e-3
#: Parameters whose gradient is zero in exact arithmetic: softmax(e + b) = softmax(e), so the bias of the
#: attention score e_ti = w^T tanh(..) + b never changes alpha. Its computed gradient is rounding noise,
#: which Adam divides by its own root mean square into lr-sized steps of random sign: 1 and 2 processes
#: round differently, so it drifts apart (1e-3 to 2e-3 after one tiny epoch) while changing nothing.
SOFTMAX_INVARIANT = ("attention.w.bias",)


def largest_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two decoders' parameters, the softmax-invariant ones aside."""
    return max(float((a[k] - b[k]).abs().max()) for k in b if k not in SOFTMAX_INVARIANT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from show_attend.training.trainer import Trainer

    trainer = Trainer(tiny_config(Path(root), "name=ddp", "train.epochs=1", "train.val_every=5"), progress=False)
    trainer.fit()
    torch.save(trainer.decoder.state_dict(), Path(out) / f"rank{rank}.pt")
    trainer.dist.close()


def test_two_processes_agree_and_match_one_process(tmp_path):
    from show_attend.training.trainer import Trainer

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "two"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in rank0:  # DDP keeps the replicas identical
        assert torch.equal(rank0[key], rank1[key]), key
    single = Trainer(tiny_config(tmp_path / "one", "name=one", "train.epochs=1", "train.val_every=5"), progress=False)
    single.fit()
    worst = largest_difference(single.decoder.state_dict(), rank0)
    print(f"largest parameter difference, 2 processes vs 1: {worst:.2e}")
    assert worst < TOLERANCE, worst
    assert (tmp_path / "two" / "runs" / "ddp" / "best.pt").is_file()  # rank 0 wrote the run folder
    assert not list((tmp_path / "two" / "runs").glob("ddp-*"))  # and only one


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo on the CPU, tested on Linux")
def test_torchrun_trains_the_demo_to_completion(tmp_path):
    sizes = [*TINY, f"data.root={tmp_path / 'shapes'}", f"data.cache_dir={tmp_path / 'cache'}",
             f"output_dir={tmp_path / 'runs'}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(REPO / "tools" / "train.py"), "--no-progress", *[x for s in sizes for x in ("--set", s)]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "shapes_demo"
    assert (run / "best.pt").is_file() and (run / "eval_test" / "metrics.json").is_file()
    assert len((run / "history.jsonl").read_text().splitlines()) == 2
    assert proc.stdout.count("training finished") == 1  # rank 0 reports, once
