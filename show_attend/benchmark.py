"""Throughput of the parts that cost time: the encoder, a training step, greedy and beam decoding.

Random inputs of the real shapes; nothing is downloaded. Each measurement runs ``warmup`` untimed
iterations, then ``iters`` timed ones (synchronising CUDA), and reports items per second.
"""
from __future__ import annotations

import platform
import time
from typing import Any, Callable

import torch

from .model.decoder import AttentionDecoder
from .model.decoding import beam_search, greedy_decode
from .model.encoder import VGG16Encoder
from .model.losses import caption_loss


def _timeit(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / iters


def run_benchmark(device: torch.device, *, grid_size: int = 7, image_size: int = 224, batch_size: int = 32,
                  vocab_size: int = 2500, caption_length: int = 13, hidden_dim: int = 512, beam_size: int = 3,
                  amp: bool = False, warmup: int = 2, iters: int = 5, parts: tuple[str, ...] = (
                      "encoder", "train_step", "greedy", "beam")) -> dict[str, Any]:
    """Measure and return a dict of images/s (or captions/s) per part, with the settings."""
    cells = grid_size * grid_size
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "grid": grid_size,
        "image_size": image_size, "batch_size": batch_size, "vocab_size": vocab_size,
        "caption_length": caption_length, "hidden_dim": hidden_dim, "beam_size": beam_size, "amp_bf16": amp,
    }
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp and device.type == "cuda"
                else torch.autocast(device_type="cpu", enabled=False))
    if "encoder" in parts:
        enc = VGG16Encoder("none", grid_size=grid_size).to(device).eval()
        images = torch.randn(batch_size, 3, image_size, image_size, device=device)

        def encode():
            with torch.no_grad(), autocast:
                enc(images)

        result["encoder_images_per_s"] = batch_size / _timeit(encode, device, warmup, iters)
        del enc, images
    dec = AttentionDecoder(vocab_size, 512, embed_dim=hidden_dim, hidden_dim=hidden_dim, attention_dim=hidden_dim).to(device)
    feats = torch.randn(batch_size, cells, 512, device=device)
    if "train_step" in parts:
        captions = torch.randint(4, vocab_size, (batch_size, caption_length + 2), device=device)
        captions[:, 0] = 1
        captions[:, -1] = 2
        opt = torch.optim.Adam(dec.parameters(), lr=1e-4)

        def step():
            with autocast:
                loss, _ = caption_loss(dec(feats, captions), captions, 0, 1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        dec.train()
        result["train_captions_per_s"] = batch_size / _timeit(step, device, warmup, iters)
    dec.eval()
    ids = dict(start_id=1, end_id=2, pad_id=0, unk_id=3, max_length=20)
    with torch.no_grad():
        dec.L_o.bias[2] = -1e4  # never end: every caption runs the full 20 steps (worst case)
    if "greedy" in parts:
        result["greedy_images_per_s"] = batch_size / _timeit(lambda: greedy_decode(dec, feats, **ids), device,
                                                             warmup, iters)
    if "beam" in parts:
        result[f"beam{beam_size}_images_per_s"] = batch_size / _timeit(
            lambda: beam_search(dec, feats, beam_size=beam_size, **ids), device, warmup, iters)
    return result
