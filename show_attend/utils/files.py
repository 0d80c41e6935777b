"""Atomic writes: the one way the package writes a file that something else may read later.

Every file is first written to a temporary name in the same folder (``.<name>.tmp-<pid>``) and then
renamed over the target with ``os.replace``, so a reader (or a crash, or ``kill -9``) sees the old
file or the new one, never half of one. The file gets the mode any newly created file would get
(0666 less the umask), not the 0600 that some writers (``tempfile``, safetensors) give their files.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Union

PathLike = Union[str, "os.PathLike[str]"]


def temporary_path(path: PathLike) -> Path:
    """The temporary name ``path`` is written under before the rename (same folder, hidden)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path``; returns ``path``.

    The parent folder is created. If ``write`` raises, the temporary file is removed and the old
    ``path`` (if any) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def current_umask() -> int:
    """The process's umask (read without changing it where /proc says it; else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporary files of interrupted writes in ``folder`` (``.<name>.tmp-<pid>`` of a
    process that no longer runs); returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: PathLike, data: Any, indent: int | None = 2) -> Path:
    """``data`` as JSON (non-ASCII kept as is; ``NaN``/``inf`` refused: strict JSON only)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False)
    return atomic_write_text(path, text)


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, inf) replaced by ``None``: strict JSON can hold it."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    return data
