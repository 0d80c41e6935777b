"""Run curves: PNG written from rows or from a run folder's history.jsonl."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from show_attend.viz.curves import plot_run, plot_run_curves, read_history


def _rows():
    rows = []
    for e in range(1, 6):
        row = {"epoch": e, "step": 10 * e, "train_loss": 3.0 / e, "lr": 4e-4 * 0.5 ** (e // 2)}
        if e % 2 == 0:  # metrics and val loss only every other epoch: missing keys allowed
            row.update(val_loss=3.2 / e, CIDEr=0.1 * e, Bleu_4=0.02 * e, note="text is ignored")
        rows.append(row)
    return rows


def test_plot_run_curves_writes_a_png(tmp_path):
    out = plot_run_curves(_rows(), tmp_path / "c.png", dpi=60)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 2 * im.size[1]  # panels side by side


def test_plot_run_reads_history_jsonl(tmp_path):
    lines = [json.dumps(r) for r in _rows()] + ["", '{"epoch": 6, "train_lo']  # interrupted write
    (tmp_path / "history.jsonl").write_text("\n".join(lines))
    assert len(read_history(tmp_path / "history.jsonl")) == 5
    out = plot_run(tmp_path, dpi=60)
    assert out == tmp_path / "curves.png" and out.read_bytes()[:4] == b"\x89PNG"


def test_sparse_and_empty_histories_and_missing_run(tmp_path):
    assert plot_run_curves([{"train_loss": 1.0}, {"train_loss": 0.5}], tmp_path / "a.png", dpi=50).is_file()
    assert plot_run_curves([], tmp_path / "b.svg", dpi=50).read_bytes()[:5] == b"<?xml"
    with pytest.raises(FileNotFoundError):
        plot_run(tmp_path / "nope")
