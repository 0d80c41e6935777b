"""Shared fixtures: tiny generated data and one tiny trained run, all on CPU."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from show_attend.config import load_config

REPO = Path(__file__).resolve().parent.parent
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "vgg16_features_imagenet.pth"


def tiny_config(root: Path, *overrides: str):
    """A synthetic-data config small enough to train in seconds on a CPU."""
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return load_config(REPO / "configs" / "shapes_demo.yaml", [
        f"data.root={root / 'shapes'}", f"data.cache_dir={root / 'cache'}", f"output_dir={root / 'runs'}",
        "data.synthetic.num_train=24", "data.synthetic.num_val=6", "data.synthetic.num_test=6",
        "encoder.weights=none", "encoder.batch_size=16",
        "model.embed_dim=32", "model.hidden_dim=32", "model.attention_dim=32", "model.dropout=0.0",
        "train.epochs=2", "train.batch_size=16", "train.val_every=1", "train.log_every=1",
        "decode.max_length=12", *overrides])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run folder with best.pt / last.pt from a 2-epoch tiny training (random encoder)."""
    from show_attend.trainer import train

    root = tmp_path_factory.mktemp("tiny")
    cfg = tiny_config(root, "name=tiny")
    run_dir = train(cfg, progress=False)
    return run_dir, cfg
