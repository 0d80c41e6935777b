"""How fast each stage runs, side by side with the designs users would otherwise run.

    result = run_benchmark(torch.device("cpu"))     # one dict: machine, settings, stages, ratios
    print(format_report(result))                    # the tables BENCHMARKS.md holds

``show-attend benchmark --device cpu --json out.json`` (``tools/benchmark.py``) runs it. Random
inputs of the real shapes (vocabulary 2,543, hidden 512, 7x7x512 annotations, 224 px images,
Flickr-like caption lengths); nothing is downloaded. ``quick=True`` shrinks every size, for tests.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..utils.markdown import markdown_table
from .stages import (cnn_stage, decode_stage, extract_stage, make_decoder, memory_stage, new_workdir,
                     scoring_seconds, train_stage)
from .timing import machine, peak_device_mib, peak_host_mib

FLICKR8K = {"train_captions": 30_000, "val_captions": 5_000, "val_images": 1_000}


@dataclass
class BenchSettings:
    vocab_size: int = 2543  # the Flickr8k vocabulary (min count 5)
    hidden: int = 512  # embed = hidden = attention = 512, as the released model
    grid: int = 7
    image_size: int = 224
    train_batch_size: int = 64  # the trainer's (configs/flickr8k_vgg16_7x7.yaml)
    train_steps: int = 8
    decode_batch_sizes: tuple[int, ...] = (32, 64, 250, 1000)
    beams: tuple[int, ...] = (3, 5)
    max_length: int = 20
    peer_images: int = 8
    cnn_batch: int = 16
    cnn_iters: int = 2
    extract_images: int = 32
    extract_batch_sizes: tuple[int, ...] = (16, 32)
    extract_workers: tuple[int, ...] = (0, 2)
    scoring_images: int = 1000
    tokenizer: str = "auto"
    memory_sizes: tuple[int, ...] = (8_000, 80_000)  # images in the cache (80k: a 3.8 GiB file, written once)
    parts: tuple[str, ...] = ("decode", "train", "cnn", "extract", "scoring", "memory")
    bf16: tuple[bool, ...] = field(default=(False, True))

    @classmethod
    def quick(cls) -> "BenchSettings":
        return cls(vocab_size=200, hidden=64, image_size=64, train_batch_size=16, train_steps=2,
                   decode_batch_sizes=(8, 16), peer_images=2, cnn_batch=2, cnn_iters=1, extract_images=4,
                   extract_batch_sizes=(2,), extract_workers=(0,), scoring_images=20, tokenizer="python",
                   memory_sizes=(200, 2_000))


def run_benchmark(device: torch.device, settings: BenchSettings | None = None, **changes: Any) -> dict[str, Any]:
    """Run the stages of ``settings.parts`` and derive the comparisons; returns one JSON-able dict."""
    s = settings or BenchSettings()
    for key, value in changes.items():
        setattr(s, key, value)
    bf16 = s.bf16
    result: dict[str, Any] = {"machine": machine(device), "settings": asdict(s)}
    cells = s.grid * s.grid
    with new_workdir() as tmp:
        from pathlib import Path

        work = Path(tmp)
        dec = make_decoder(s.vocab_size, s.hidden, device)
        if "decode" in s.parts:
            result["decode"] = decode_stage(dec, device, cells, s.decode_batch_sizes, s.beams, s.peer_images,
                                            s.max_length)
            result["decode"]["peak_host_mib"] = peak_host_mib()
        if "train" in s.parts:
            result["train"] = train_stage(dec, device, cells, s.vocab_size, s.train_batch_size, s.train_steps, 5.0,
                                          bf16, work)
            result["train"]["peak_host_mib"] = peak_host_mib()
        if "cnn" in s.parts:
            result["cnn"] = cnn_stage(device, s.image_size, s.grid, s.cnn_batch, bf16, (False, True), s.cnn_iters)
        if "extract" in s.parts:
            result["extract"] = extract_stage(device, s.image_size, s.grid, s.extract_images, s.extract_batch_sizes,
                                              s.extract_workers, work)
            result["extract"]["peak_host_mib"] = peak_host_mib()
        if "memory" in s.parts:
            result["memory"] = memory_stage(s.memory_sizes, cells, work, steps=2 if s.hidden < 512 else 200)
        if "scoring" in s.parts:
            result["scoring"] = {f"validation_scoring_{s.scoring_images}_images_s":
                                 scoring_seconds(s.scoring_images, s.tokenizer)}
    result["peak_device_mib"] = peak_device_mib(device)
    result["derived"] = derive(result, s)
    return result


def derive(result: dict[str, Any], s: BenchSettings) -> dict[str, Any]:
    """The ratios and the predicted Flickr8k epoch, from the measured stages."""
    out: dict[str, Any] = {}
    train, cnn, dec = result.get("train", {}), result.get("cnn", {}), result.get("decode", {})
    if train and cnn:
        cached = train["train_cached_captions_per_s"]
        # the tutorial's step: the CNN on each caption's image, then the same decoder step
        tutorial = 1.0 / (1.0 / cnn["cnn_fp32_images_per_s"] + 1.0 / cached)
        out["train_cnn_every_batch_captions_per_s"] = tutorial
        out["speedup_train_cached_vs_cnn"] = cached / tutorial
    for k in s.beams:
        key = f"speedup_beam{k}_vs_per_image"
        if key in dec:
            out[key] = dec[key]
    if train:
        epoch_train = FLICKR8K["train_captions"] / train["train_cached_captions_per_s"]
        out["flickr8k_epoch_train_s"] = epoch_train
        b = s.train_batch_size if f"greedy_b{s.train_batch_size}_images_per_s" in dec else min(s.decode_batch_sizes)
        if dec and "scoring" in result:
            scoring = next(iter(result["scoring"].values())) * FLICKR8K["val_images"] / s.scoring_images
            validation = (FLICKR8K["val_captions"] / train["val_loss_captions_per_s"]
                          + FLICKR8K["val_images"] / dec[f"greedy_b{b}_images_per_s"] + scoring)
            out["flickr8k_validation_s"] = validation
            out["predicted_flickr8k_epoch_s"] = epoch_train + validation
    if cnn:
        out["flickr8k_extraction_7000_images_min"] = 7000 / max(v for k, v in cnn.items() if k.endswith("per_s")) / 60
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
    return str(value)


def format_report(result: dict[str, Any]) -> str:
    """Markdown: the machine, then one two-column table per stage (measured value per key)."""
    m = result["machine"]
    lines = [f"{m.get('date')}  {m.get('cpu') or m['device']}  torch {m['torch']}, {m['threads']} threads"
             + (f"; bf16 instructions: {', '.join(m['cpu_flags_bf16']) or 'none'} "
                f"(torch dispatch: {m.get('torch_cpu_capability')})" if "cpu_flags_bf16" in m else ""), ""]
    for stage in ("decode", "train", "cnn", "extract", "memory", "scoring", "derived"):
        if result.get(stage):
            lines += [f"**{stage}**", "", markdown_table(["measure", "value"],
                                                         [[k, _fmt(v)] for k, v in result[stage].items()],
                                                         ["left", "right"]), ""]
    return "\n".join(lines)


__all__ = ["BenchSettings", "format_report", "run_benchmark"]
