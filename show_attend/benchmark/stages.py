"""The stages the benchmark times, each against the design users would otherwise run.

    decode      batched greedy / beam k over B images  vs  a per-image loop of our beam_search
                and the tutorial's per-image loop (5 decodes per image: once per reference)
    train       the trainer's step from the float16 feature cache (length-grouped batches, clipping,
                Adam)  vs  the tutorial's step, which runs the frozen CNN on every batch
    extract     JPEG files -> resized tensors -> VGG16 -> features, by batch size and workers;
                the JPEG side alone and the CNN alone, so the bound is visible
"""
from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..data.loaders import LengthGroupedBatchSampler, collate_captions
from ..data.transforms import ImageTransform
from ..model.decoder import AttentionDecoder
from ..model.decoding import beam_search, greedy_decode
from ..model.encoder import VGG16Encoder
from ..model.losses import caption_loss
from .peers import tutorial_beam_search
from .timing import timeit

IDS = dict(start_id=1, end_id=2, pad_id=0, unk_id=3)


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def make_decoder(vocab_size: int, hidden: int, device: torch.device) -> AttentionDecoder:
    dec = AttentionDecoder(vocab_size, 512, embed_dim=hidden, hidden_dim=hidden, attention_dim=hidden).to(device)
    with torch.no_grad():
        dec.L_o.bias[IDS["end_id"]] = -1e4  # never end: every caption runs max_length steps (the worst case)
    return dec


def decode_stage(dec: AttentionDecoder, device: torch.device, cells: int, batch_sizes: Sequence[int],
                 beams: Sequence[int], peer_images: int, max_length: int, references: int = 5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dec.eval()
    for b in batch_sizes:
        feats = torch.randn(b, cells, 512, device=device)
        iters = 1 if b >= 500 else 2
        out[f"greedy_b{b}_images_per_s"] = b / timeit(lambda: greedy_decode(dec, feats, max_length=max_length, **IDS),
                                                      device, 1, iters)
        for k in beams:
            out[f"beam{k}_b{b}_images_per_s"] = b / timeit(
                lambda: beam_search(dec, feats, beam_size=k, max_length=max_length, **IDS), device, 1, iters)
    one = [torch.randn(1, cells, 512, device=device) for _ in range(peer_images)]
    for k in beams:
        def own_loop():
            for f in one:
                beam_search(dec, f, beam_size=k, max_length=max_length, **IDS)

        def tutorial_loop():
            for f in one:
                for _ in range(references):  # the tutorial's test loader yields each image once per caption
                    tutorial_beam_search(dec, f, beam_size=k, start_id=1, end_id=2, max_length=max_length)

        out[f"beam{k}_per_image_loop_images_per_s"] = peer_images / timeit(own_loop, device, 0, 1)
        out[f"beam{k}_tutorial_loop_images_per_s"] = peer_images / timeit(tutorial_loop, device, 0, 1)
        best = max(out[f"beam{k}_b{b}_images_per_s"] for b in batch_sizes)
        out[f"speedup_beam{k}_vs_per_image"] = best / out[f"beam{k}_tutorial_loop_images_per_s"]
        out[f"speedup_beam{k}_vs_own_per_image_loop"] = best / out[f"beam{k}_per_image_loop_images_per_s"]
    return out


class _CachedCaptions(Dataset):
    """(float16 features from a memory-mapped cache, caption ids) pairs, as CaptionDataset gives them."""

    def __init__(self, array: np.ndarray, captions: list[list[int]], per_image: int):
        self.array, self.captions, self.per_image = array, captions, per_image

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int):
        return torch.from_numpy(np.array(self.array[i // self.per_image])), torch.tensor(self.captions[i])


def flickr_like_lengths(n: int, seed: int = 0) -> list[int]:
    """Caption lengths in words like Flickr8k's (mean ~11, most 5-20)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.gamma(7.5, 1.5, n)), 3, 38).astype(int).tolist()


def train_stage(dec: AttentionDecoder, device: torch.device, cells: int, vocab_size: int, batch_size: int,
                steps: int, grad_clip: float, bf16_modes: Sequence[bool], workdir: Path) -> dict[str, Any]:
    """Captions/s of the trainer's real step, from a memory-mapped float16 cache."""
    images = max(steps * batch_size // 5 + 1, 64)
    array = np.lib.format.open_memmap(workdir / "train.npy", mode="w+", dtype=np.float16, shape=(images, cells, 512))
    array[:] = np.random.default_rng(0).standard_normal((images, cells, 512)).astype(np.float16)
    array.flush()
    array = np.load(workdir / "train.npy", mmap_mode="r")
    rng = np.random.default_rng(1)
    captions = [[1, *rng.integers(4, vocab_size, n).tolist(), 2] for n in flickr_like_lengths(images * 5)]
    data = _CachedCaptions(array, captions, 5)
    sampler = LengthGroupedBatchSampler([len(c) for c in captions], batch_size, seed=0)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=collate_captions,
                        pin_memory=device.type == "cuda")
    optimizer = torch.optim.Adam(dec.parameters(), lr=1e-4)
    out: dict[str, Any] = {"train_batch_size": batch_size,
                           "mean_caption_tokens": float(np.mean([len(c) for c in captions]))}
    for bf16 in bf16_modes:
        batches = iter(loader)
        dec.train()

        def step():
            feats, caps = next(batches)
            feats, caps = feats.to(device, non_blocking=True).float(), caps.to(device, non_blocking=True)
            with autocast(device, bf16):
                loss, _ = caption_loss(dec(feats, caps), caps, 0, 1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dec.parameters(), grad_clip)
            optimizer.step()

        seconds = timeit(step, device, 1, steps)
        out["train_cached" + ("_bf16" if bf16 else "") + "_captions_per_s"] = batch_size / seconds
    batches = iter(loader)
    dec.eval()

    def forward():  # the teacher-forced validation loss: forward only, the same batches
        feats, caps = next(batches)
        with torch.no_grad():
            caption_loss(dec(feats.to(device).float(), caps.to(device)), caps.to(device), 0, 0.0)

    out["val_loss_captions_per_s"] = batch_size / timeit(forward, device, 1, steps)
    return out


def cnn_stage(device: torch.device, image_size: int, grid: int, batch: int, bf16_modes: Sequence[bool],
              channels_last_modes: Sequence[bool], iters: int, weights: str = "none") -> dict[str, Any]:
    """Images/s of VGG16 to block5_conv3 (the CNN alone, random input), per precision and layout,
    and how far bf16 features are from fp32 ones."""
    enc = VGG16Encoder(weights, grid_size=grid).to(device).eval()
    images = torch.randn(batch, 3, image_size, image_size, device=device)
    out: dict[str, Any] = {}
    with torch.no_grad():
        reference = enc(images).float()
    for cl in channels_last_modes:
        model = enc.to(memory_format=torch.channels_last) if cl else enc.to(memory_format=torch.contiguous_format)
        x = images.to(memory_format=torch.channels_last) if cl else images
        for bf16 in bf16_modes:
            def run():
                with torch.no_grad(), autocast(device, bf16):
                    return model(x)

            name = "cnn" + ("_bf16" if bf16 else "_fp32") + ("_channels_last" if cl else "")
            out[name + "_images_per_s"] = batch / timeit(run, device, 1, iters)
            if bf16:
                got = run().float()
                out[name + "_feature_rel_error"] = float((got - reference).norm() / reference.norm())
    return out


class _Files(Dataset):
    def __init__(self, paths: Sequence[Path], transform: ImageTransform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.paths[i])


def extract_stage(device: torch.device, image_size: int, grid: int, n_images: int, batch_sizes: Sequence[int],
                  workers: Sequence[int], workdir: Path) -> dict[str, Any]:
    """Images/s from JPEG files (Flickr-sized, 500x375) to features, and of the JPEG side alone."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n_images):
        base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((500, 375), Image.BICUBIC)  # smooth, so JPEG sizes are photo-like
        paths.append(workdir / f"{i:05d}.jpg")
        img.save(paths[-1], quality=90)
    transform = ImageTransform(image_size, "squash")
    enc = VGG16Encoder("none", grid_size=grid).to(device).eval()
    out: dict[str, Any] = {}
    for w in workers:
        loader = DataLoader(_Files(paths, transform), batch_size=max(batch_sizes), num_workers=w)

        def jpeg_only():
            for _ in loader:
                pass

        out[f"jpeg_decode_resize_w{w}_images_per_s"] = n_images / timeit(jpeg_only, device, 0, 1)
        for b in batch_sizes:
            loader_b = DataLoader(_Files(paths, transform), batch_size=b, num_workers=w)

            def full():
                with torch.no_grad():
                    for images in loader_b:
                        enc(images.to(device, non_blocking=True))

            out[f"extract_b{b}_w{w}_images_per_s"] = n_images / timeit(full, device, 0, 1)
    return out


def scoring_seconds(n_images: int, tokenizer: str = "auto") -> float:
    """Seconds to score ``n_images`` decoded captions against 5 references, as validation does."""
    from ..metrics.names import VALIDATION_METRICS
    from ..metrics.scoring import score_captions

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(800)]

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words, n))

    results = {str(i): sentence(10) for i in range(n_images)}
    refs = {str(i): [sentence(11) for _ in range(5)] for i in range(n_images)}
    import time

    t0 = time.perf_counter()
    score_captions(results, refs, tokenizer=tokenizer, metrics=VALIDATION_METRICS)
    return time.perf_counter() - t0


def new_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="show_attend_bench_")


_MEMORY_PROBE = """
import sys, numpy as np, torch
from torch.utils.data import DataLoader
sys.path[:0] = [sys.argv[3]]
from show_attend.benchmark.stages import _CachedCaptions
from show_attend.data.loaders import LengthGroupedBatchSampler, collate_captions
array = np.load(sys.argv[1], mmap_mode="r")
n, steps = len(array), int(sys.argv[2])
rng = np.random.default_rng(0)
captions = [[1, *rng.integers(4, 2000, 11).tolist(), 2] for _ in range(5 * n)]
loader = DataLoader(_CachedCaptions(array, captions, 5), collate_fn=collate_captions,
                    batch_sampler=LengthGroupedBatchSampler([13] * (5 * n), 64, seed=0))
for i, (feats, caps) in enumerate(loader):
    feats.float().sum()
    if i + 1 >= steps:
        break
status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(("RssAnon", "RssFile"))}
print(status["RssAnon"] / 1024.0, status["RssFile"] / 1024.0)
"""


def memory_stage(sizes: Sequence[int], cells: int, workdir: Path, steps: int = 200) -> dict[str, Any]:
    """Host memory (MiB) of a process that reads ``steps`` training batches from caches of ``sizes``
    images (a fresh process each): its own (anonymous) memory, flat in the cache size since the
    cache is a memory map, and the file pages it has mapped (page cache, reclaimable)."""
    import subprocess
    import sys

    out: dict[str, Any] = {}
    for n in sizes:
        path = workdir / f"cache_{n}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, cells, 512))
        for start in range(0, n, 4096):  # written in chunks: the writer need not hold it either
            array[start: start + 4096] = np.random.default_rng(start).standard_normal(
                (min(4096, n - start), cells, 512)).astype(np.float16)
        array.flush()
        del array
        package_root = str(Path(__file__).resolve().parent.parent.parent)
        probe = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), str(steps), package_root],
                               capture_output=True, text=True, check=True)
        out[f"train_{n}_images_cache_mib"] = path.stat().st_size / 2**20
        anon, file_pages = map(float, probe.stdout.split()[-2:])
        out[f"train_{n}_images_own_memory_mib"] = anon
        out[f"train_{n}_images_mapped_cache_pages_mib"] = file_pages
        path.unlink()
    return out
