"""The shared helpers: atomic writes, strict JSON, stale temporaries, markdown tables, eval_mode."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from show_attend.utils.files import (atomic_write, atomic_write_json, json_safe, remove_stale_temporaries,
                                     temporary_path)
from show_attend.utils.markdown import markdown_table
from show_attend.utils.runtime import eval_mode


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert json.loads(path.read_text()) == {"x": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask_not_the_writers_0600(tmp_path, umask):
    import os
    import tempfile

    from safetensors.torch import save_file

    def private_copy(tmp):  # a writer that creates its file 0600, as tempfile and safetensors do
        fd, name = tempfile.mkstemp(dir=tmp.parent)
        os.close(fd)
        save_file({"w": torch.zeros(2)}, name)
        os.replace(name, tmp)

    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "w.safetensors", private_copy)
        atomic_write_json(tmp_path / "m.json", {"x": 1})
    finally:
        os.umask(old)
    for name in ("w.safetensors", "m.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_is_strict():
    with pytest.raises(ValueError):
        atomic_write_json("/dev/null", {"x": float("nan")})
    assert json_safe({"a": [1.0, float("nan")], "b": {"c": float("inf")}}) == {"a": [1.0, None], "b": {"c": None}}


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".last.pt.tmp-{dead}"
    stale.write_bytes(b"half a checkpoint")
    mine = temporary_path(tmp_path / "best.pt")  # this process's: being written right now
    mine.write_bytes(b"in progress")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, "x"]], ["left", "right"]) == "| a | b |\n|---|---:|\n| 1 | x |"
    with pytest.raises(ValueError):
        markdown_table(["a"], [[1, 2]])


def test_eval_mode_restores_each_modules_own_mode():
    a, b = torch.nn.Dropout(), torch.nn.Dropout().eval()
    with eval_mode(a, None, b):
        assert not a.training and not b.training
    assert a.training and not b.training
    with eval_mode(b, training=True):
        assert b.training
    assert not b.training
