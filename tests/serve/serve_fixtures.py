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
def captioner(trained_run):
    from show_attend.api import Captioner

    run_dir, _ = trained_run
    return Captioner.from_checkpoint(run_dir, device="cpu")


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
