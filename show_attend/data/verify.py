"""Checking every image of a dataset once, before anything is trained on it.

Each image is opened through :func:`show_attend.data.images.open_image` (header, full decode, mode,
size), so a broken file is found at preparation, not hours into feature extraction. Results are
cached by file stamp (size and modification time) in ``<cache_dir>/image_check.json``: a second
preparation re-opens only the files that changed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from tqdm.auto import tqdm

from ..utils.files import atomic_write_json
from .images import ImageError, open_image

CHECK_FILE = "image_check.json"
CHECK_VERSION = 1


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify_images(image_dir: Path, file_names: Sequence[str], cache_dir: Optional[Path] = None,
                  progress: bool = True) -> dict[str, str]:
    """{file name: why it cannot be used} for the broken images among ``file_names`` (none: {})."""
    cache_path = Path(cache_dir) / CHECK_FILE if cache_dir is not None else None
    cached: dict[str, list] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            data = json.loads(cache_path.read_text())
            if data.get("version") == CHECK_VERSION and data.get("image_dir") == str(image_dir):
                cached = data["files"]
        except (json.JSONDecodeError, KeyError, TypeError):
            cached = {}
    files: dict[str, list] = {}
    broken: dict[str, str] = {}
    for name in tqdm(file_names, desc="check images", unit="image", disable=not progress, leave=False):
        path = image_dir / name
        try:
            stamp = _stamp(path)
        except OSError as exc:
            broken[name] = f"cannot be read ({exc.strerror or exc})"
            continue
        entry = cached.get(name)
        if entry is not None and entry[:2] == stamp:
            reason = entry[2]
        else:
            try:
                open_image(path)
                reason = None
            except ImageError as exc:
                reason = exc.reason
            except OSError as exc:
                reason = f"cannot be read ({exc.strerror or exc})"
        files[name] = [*stamp, reason]
        if reason is not None:
            broken[name] = reason
    if cache_path is not None:
        atomic_write_json(cache_path, {"version": CHECK_VERSION, "image_dir": str(image_dir), "files": files},
                          indent=None)
    return broken
