"""Feature extraction under torchrun: the ranks share the images and rank 0 writes one cache, equal
to the cache one process writes."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from conftest import tiny_config


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from show_attend.cli import extract_main

    cfg = tiny_config(Path(root))
    torch.manual_seed(0)  # the same random VGG16 on every rank (and in the 1-process run)
    sets = [f"data.root={cfg.data.root}", f"data.cache_dir={cfg.data.cache_dir}", "encoder.weights=none",
            "data.synthetic.num_train=24", "data.synthetic.num_val=7", "data.synthetic.num_test=6"]
    assert extract_main(["--splits", "val", *[x for s in sets for x in ("--set", s)]]) == 0


def test_two_processes_write_the_cache_one_process_writes(tmp_path, monkeypatch):
    from show_attend.data.features import FeatureStore

    mp.spawn(_worker, args=(2, _port(), str(tmp_path / "two")), nprocs=2, join=True)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(name, "0")  # restored after the test (the 1-process run sets them in this process)
    _worker(0, 1, _port(), str(tmp_path / "one"))
    two, one = (next((tmp_path / d / "cache" / "features").glob("*/val.npy")) for d in ("two", "one"))
    a, b = FeatureStore(two), FeatureStore(one)
    assert a.image_ids == b.image_ids and len(a) == 7  # an odd count: the ranks hold 4 and 3 images
    diff = np.abs(a.array.astype(np.float32) - b.array.astype(np.float32)).max()
    assert diff <= 1e-3 * np.abs(b.array.astype(np.float32)).max(), diff
    assert sorted(p.name for p in two.parent.iterdir()) == ["val.json", "val.npy"]  # the parts are gone
