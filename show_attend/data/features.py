"""The feature cache: the encoder runs once per split; training reads float16 memory-mapped arrays.

    <cache_dir>/features/<key>/<split>.npy    float16 array (N, L, D), read with mmap (never loaded whole)
    <cache_dir>/features/<key>/<split>.json   index: image ids (row order), encoder, weights, grid, size

D is the encoder's (512 for VGG, 2048 for a ResNet's layer4 or Xception, 1024 for layer3). With VGG16
at the 7x7 grid a row is 49 x 512 x 2 bytes = 50,176 bytes per image; at 14x14, 200,704 bytes.
The key names the encoder (and, beyond VGG16, the map it taps), so two encoders never share a cache.
The arrays are opened lazily in each process, so DataLoader workers (num_workers > 0) can use them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..config import check_choice
from ..model.geometry import pools_block5
from ..model.specs import encoder_spec, feature_dim, resolve_tap
from ..utils.files import atomic_write, atomic_write_json, remove_stale_temporaries
from ..utils.runtime import eval_mode, resolve_precision
from .images import ImageError
from .transforms import ImageTransform

LOG = logging.getLogger(__name__)


def weights_tag(weights: str) -> str:
    """A short, stable name for an encoder weights setting (a file by name and content hash)."""
    if weights in ("imagenet", "none"):
        return weights
    path = Path(weights)
    h = hashlib.sha256()
    with path.open("rb") as fh:
        h.update(fh.read(1 << 20))  # the first MiB is enough to tell files apart
    return f"{path.stem}-{h.hexdigest()[:8]}"


def images_stamps(paths: Sequence[Path]) -> str:
    """A hash of the image files' names, sizes and modification times: the check at every start,
    which reads no image content (on COCO, reading 64 KiB of each of 120k files costs minutes)."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def images_fingerprint(paths: Sequence[Path]) -> str:
    """A hash of the image files' names, sizes and first 64 KiB: a changed image set or a
    regenerated image invalidates the cache, while a copy of the same files (new modification
    times, e.g. a dataset copied to another disk) keeps it."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(f"{p.name}:{p.stat().st_size};".encode())
        with p.open("rb") as fh:
            h.update(hashlib.sha256(fh.read(1 << 16)).digest())
    return h.hexdigest()[:16]


def cache_key(encoder_cfg) -> str:
    """``vgg16_imagenet_g7_s224_squash`` (VGG16: the keys of old caches), ``resnet50-layer4_none_g7_s224_squash``."""
    pooled = pools_block5(encoder_cfg.grid_size, encoder_cfg.image_size, encoder_cfg.name)
    tag = f"_{encoder_cfg.pool}pool" if encoder_cfg.pool != "max" and pooled else ""  # max: the keys of old caches
    arithmetic = ("_bf16" if encoder_cfg.precision == "bf16" else "") + ("_cl" if encoder_cfg.channels_last else "")
    name = encoder_cfg.name
    if name != "vgg16":
        name += "-" + resolve_tap(name, encoder_cfg.grid_size, encoder_cfg.image_size).label
    return (f"{name}_{weights_tag(encoder_cfg.weights)}_g{encoder_cfg.grid_size}"
            f"_s{encoder_cfg.image_size}_{encoder_cfg.resize_mode}{tag}{arithmetic}")


class FeatureStore:
    """Read access to one split's cached features; safe to pickle into DataLoader workers."""

    def __init__(self, npy_path: str | Path):
        self.path = Path(npy_path)
        self.index = json.loads(self.path.with_suffix(".json").read_text())
        self.image_ids: list[str] = self.index["image_ids"]
        self.row_of = {image_id: i for i, image_id in enumerate(self.image_ids)}
        self._array: Optional[np.ndarray] = None  # opened lazily, per process

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def unreadable(self) -> dict[str, str]:
        """{image id: reason} of images that could not be read at extraction (their rows are zeros)."""
        return self.index.get("unreadable") or {}

    def get(self, image_id: str) -> torch.Tensor:
        """(L, D) float16 tensor for one image."""
        return torch.from_numpy(np.array(self.array[self.row_of[image_id]]))


class _ImageFiles(Dataset):
    def __init__(self, paths: Sequence[Path], transform: ImageTransform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        """(the image tensor, "") or, for a file that broke after preparation, (zeros, the reason)."""
        try:
            return self.transform(self.paths[i]), ""
        except ImageError as exc:
            s = self.transform.image_size
            return torch.zeros(3, s, s), exc.reason


@torch.no_grad()
def extract_features(encoder: torch.nn.Module, image_paths: Sequence[Path], image_ids: Sequence[str],
                     out_path: str | Path, transform: ImageTransform, meta: dict[str, Any],
                     batch_size: int = 32, num_workers: int = 0, device: str | torch.device = "cpu",
                     progress: bool = True, desc: str = "features", precision: str = "fp32",
                     channels_last: bool = False, dist=None) -> FeatureStore:
    """Run ``encoder`` over the images and write ``out_path`` (.npy, float16) and its .json index.

    ``precision="bf16"`` runs the CNN under bf16 autocast; ``channels_last`` in the NHWC layout.
    ``dist`` (a ``show_attend.utils.distributed.Distributed`` of several ranks): each rank encodes
    every world-th image and rank 0 assembles the one cache, which every rank then opens.
    Writes to temporary names and renames at the end, so an interrupted run leaves no half cache.
    """
    out_path = Path(out_path)
    if dist is not None and dist.enabled:
        return _extract_shared(encoder, image_paths, image_ids, out_path, transform, meta, batch_size, num_workers,
                               device, progress, desc, precision, channels_last, dist)
    grid, dim = encoder.grid_size, getattr(encoder, "feature_dim", 512)
    loader = DataLoader(_ImageFiles(image_paths, transform), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    encoder.to(device, memory_format=layout)
    arithmetic = (torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
                  if precision == "bf16" else nullcontext())

    unreadable: dict[str, str] = {}

    def rows():
        row = 0
        with eval_mode(encoder), torch.no_grad(), arithmetic:
            for images, reasons in tqdm(loader, desc=desc, unit="batch", disable=not progress):
                for k, reason in enumerate(reasons):
                    if reason:  # changed since preparation: its row stays zeros, and it is named
                        unreadable[image_ids[row + k]] = f"{image_paths[row + k]}: {reason}"
                        LOG.warning("skipping %s: %s", image_paths[row + k], reason)
                row += len(reasons)
                yield encoder(images.to(device, memory_format=layout)).float().cpu().numpy().astype(np.float16)

    index = dict(meta, image_ids=list(image_ids), unreadable=unreadable)  # filled while the rows are written
    return _write_cache(out_path, len(image_paths), grid, index, rows(), dim)


def _extract_shared(encoder, image_paths, image_ids, out_path: Path, transform, meta, batch_size, num_workers, device,
                    progress, desc, precision, channels_last, dist) -> FeatureStore:
    """Every rank its share (images ``rank::world``) into a part file; rank 0 interleaves the parts."""
    part = out_path.with_name(f".{out_path.stem}.part{dist.rank}.npy")
    mine = extract_features(encoder, dist.share(list(image_paths)), dist.share(list(image_ids)), part, transform,
                            meta, batch_size, num_workers, device, progress and dist.main, desc, precision,
                            channels_last)
    unreadable = dist.gather_dicts(mine.unreadable)
    dist.barrier()
    if dist.main:
        parts = [FeatureStore(out_path.with_name(f".{out_path.stem}.part{r}.npy")) for r in range(dist.world)]

        def blocks():
            for i in range(len(image_ids)):
                yield np.asarray(parts[i % dist.world].array[i // dist.world])[None]

        _write_cache(out_path, len(image_ids), encoder.grid_size,
                     dict(meta, image_ids=list(image_ids), unreadable=unreadable), blocks(), parts[0].array.shape[2])
        for p in parts:
            p.path.unlink()
            p.path.with_suffix(".json").unlink()
    dist.barrier()
    return FeatureStore(out_path)


def _write_cache(out_path: Path, n: int, grid: int, index: dict[str, Any], blocks: Iterable[np.ndarray],
                 dim: int = 512) -> FeatureStore:
    """Write ``blocks`` of rows (b, grid*grid, dim) into ``out_path`` and its .json index, atomically
    (temporary names, renamed at the end: an interrupted run leaves no half cache)."""
    def fill(tmp: Path) -> None:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, grid * grid, dim))
        row = 0
        for block in blocks:
            array[row: row + len(block)] = block
            row += len(block)
        array.flush()
        del array

    atomic_write(out_path, fill)
    atomic_write_json(out_path.with_suffix(".json"), dict(index, shape=[n, grid * grid, dim], dtype="float16",
                                                          bytes_per_image=grid * grid * dim * 2), indent=None)
    return FeatureStore(out_path)


def feature_path(cache_dir: str | Path, encoder_cfg, split: str) -> Path:
    return Path(cache_dir) / "features" / cache_key(encoder_cfg) / f"{split}.npy"


def pool_features(source: FeatureStore, out_path: str | Path, grid_size: int, meta: dict[str, Any],
                  chunk: int = 256, progress: bool = True, desc: str = "pool features",
                  mode: str = "max") -> FeatureStore:
    """Write a ``grid_size`` cache by max- (or avg-) pooling a finer cached grid (no CNN run).

    A 7x7 cache from a 14x14 one of the same tapped map is the same array the encoder would give (its
    7x7 grid is a 2x2 max pool of the 14x14 block5_conv3 map, and max-pooling commutes with float16 rounding), in seconds.
    With ``mode="avg"`` it is the mean of the float16 cells, computed in float32: equal to the
    encoder's average within float16 rounding.
    """
    check_choice("encoder.pool", mode, "mode")
    fine = int(round(source.array.shape[1] ** 0.5))
    if fine % grid_size:
        raise ValueError(f"cannot pool a {fine}x{fine} grid to {grid_size}x{grid_size}")
    k = fine // grid_size
    n, dim = len(source), source.array.shape[2]

    def blocks():
        for start in tqdm(range(0, n, chunk), desc=desc, unit="chunk", disable=not progress):
            block = np.asarray(source.array[start: start + chunk])  # (b, fine*fine, D)
            b = len(block)
            # (b, g, k, g, k, D): cell (r, c) of the coarse grid covers rows r*k.., cols c*k.. of the fine one
            block = block.reshape(b, grid_size, k, grid_size, k, dim)
            if mode == "max":
                block = block.max(axis=(2, 4))  # (b, g, g, D)
            else:
                block = block.astype(np.float32).mean(axis=(2, 4))  # (b, g, g, D)
            yield block.reshape(b, grid_size * grid_size, dim)

    index = dict(source.index, **meta, pool=mode, pooled_from=str(source.path))
    return _write_cache(Path(out_path), n, grid_size, index, blocks(), dim)


def _finer_cache(cache_dir: str | Path, encoder_cfg, split: str, ids: list[str], fingerprint: str
                 ) -> Optional[FeatureStore]:
    """A valid cache of the same images, encoder, tapped map and input size at a grid that pools to ours."""
    spec = encoder_spec(encoder_cfg.name)
    tap = resolve_tap(spec.name, encoder_cfg.grid_size, encoder_cfg.image_size)
    if encoder_cfg.image_size % tap.stride:
        return None
    native = spec.map_size(tap, encoder_cfg.image_size)  # the tapped map's size: the finest grid there is
    for fine in range(native, encoder_cfg.grid_size, -1):
        if fine % encoder_cfg.grid_size or resolve_tap(spec.name, fine, encoder_cfg.image_size) != tap:
            continue
        path = feature_path(cache_dir, dataclasses.replace(encoder_cfg, grid_size=fine), split)
        if path.is_file() and path.with_suffix(".json").is_file():
            store = FeatureStore(path)
            if store.image_ids == ids and store.index.get("images_fingerprint") == fingerprint:
                return store
    return None


def ensure_features(dataset, encoder_cfg, split: str, device: str | torch.device = "cpu",
                    num_workers: int = 0, progress: bool = True, encoder=None, dist=None) -> FeatureStore:
    """The cached features of ``split``, extracting them first if the cache is missing or stale."""
    from ..model.encoder import build_encoder

    if encoder_cfg.precision == "auto":  # the arithmetic this machine runs fast (and its cache key)
        encoder_cfg = dataclasses.replace(encoder_cfg, precision=resolve_precision("auto", device))

    path = feature_path(dataset.root, encoder_cfg, split)
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)  # the half-written array of an interrupted extraction
    images = dataset.split(split)
    ids = [im.image_id for im in images]
    paths = [dataset.image_dir / im.file_name for im in images]
    stamps = images_stamps(paths)
    fingerprint = None
    if path.is_file() and path.with_suffix(".json").is_file():
        store = FeatureStore(path)
        if store.image_ids == ids and store.index.get("images_stamps") == stamps:
            return store  # names, sizes and times unchanged: valid without reading any image
        fingerprint = images_fingerprint(paths)  # something changed: compare the content
        if store.image_ids == ids and store.index.get("images_fingerprint") == fingerprint:
            store.index["images_stamps"] = stamps  # the same files, copied (new times): remember them
            atomic_write_json(path.with_suffix(".json"), store.index, indent=None)
            return store
    fingerprint = fingerprint or images_fingerprint(paths)
    finer = _finer_cache(dataset.root, encoder_cfg, split, ids, fingerprint)
    if finer is not None:  # e.g. 7x7 from a 14x14 cache: pool it instead of running the CNN again
        return pool_features(finer, path, encoder_cfg.grid_size, {"grid_size": encoder_cfg.grid_size},
                             progress=progress, desc=f"{split} features (pooled)", mode=encoder_cfg.pool)
    if encoder is None:
        encoder = build_encoder(encoder_cfg)
    meta = {"encoder": encoder_cfg.name, "weights": encoder_cfg.weights, "feature_dim": feature_dim(encoder_cfg),
            "weights_loaded": getattr(encoder, "weights_label", encoder_cfg.weights),
            "grid_size": encoder_cfg.grid_size, "image_size": encoder_cfg.image_size,
            "resize_mode": encoder_cfg.resize_mode, "pool": encoder_cfg.pool, "split": split,
            "precision": encoder_cfg.precision, "channels_last": encoder_cfg.channels_last,
            "images_fingerprint": fingerprint, "images_stamps": stamps}
    transform = ImageTransform(encoder_cfg.image_size, encoder_cfg.resize_mode, encoder_cfg.name)
    return extract_features(encoder, paths, ids, path,
                            transform, meta, encoder_cfg.batch_size, num_workers, device, progress,
                            desc=f"{split} features", precision=encoder_cfg.precision,
                            channels_last=encoder_cfg.channels_last, dist=dist)
