"""Fixtures and helpers of the serving tests (imported by each test module: a second conftest.py would
shadow tests/conftest.py as the module `conftest`): the tiny trained run as a Captioner, photos, uploads."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image



def need_serve_extra() -> None:
    """Skip the calling test module where fastapi / uvicorn are not installed."""
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    pytest.importorskip("uvicorn", reason="serving needs the [serve] extra")


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def scene(seed: int, size: int = 112) -> Image.Image:
    from show_attend.data.scenes import render_scene

    return render_scene(np.random.default_rng(seed), size)[0]


@pytest.fixture(scope="session")
def captioner(tmp_path_factory):
    """A tiny model of its own, trained long enough to say something for every photo (the shared
    2-epoch ``trained_run`` may end at once under beam search, depending on what ran before it)."""
    from show_attend.api import Captioner
    from show_attend.training.trainer import train

    from conftest import tiny_config

    cfg = tiny_config(tmp_path_factory.mktemp("serve_model"), "name=serve", "train.epochs=6", "train.val_every=6",
                      "data.synthetic.num_train=48", "optim.lr=3e-3")
    return Captioner.from_checkpoint(train(cfg, progress=False) / "best.pt", device="cpu")


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    """Six photos: shapes scenes, one wide, one tall, one grayscale JPEG-like."""
    images = [scene(s) for s in range(4)]
    images.append(scene(7, 160).resize((200, 90)))
    images.append(scene(8, 160).resize((70, 150)).convert("L").convert("RGB"))
    return images


@pytest.fixture(scope="session")
def uploads(photos) -> list[bytes]:
    return [png_bytes(im) for im in photos]
