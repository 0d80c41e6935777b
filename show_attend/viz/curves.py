"""Training curves of a run: losses and caption metrics per epoch, side by side (PNG/PDF/SVG).

    plot_run("runs/shapes_demo")          # reads history.jsonl, writes runs/shapes_demo/curves.png
    plot_run_curves(history_rows, "curves.png")

A history row is a dict such as ``{"epoch": 1, "step": 120, "train_loss": 3.1, "val_loss": 2.9,
"lr": 4e-4, "CIDEr": 0.41, "Bleu_4": 0.12}``; any key may be missing from any row. Keys containing
"loss" go to the loss panel, ``lr`` to a learning-rate panel, known caption metrics (``Bleu_1``..
``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``, also with a ``val_``/``test_`` prefix,
plus any names passed in ``metrics``) to the metric panel. Only the object-oriented matplotlib API
is used (no pyplot state).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..metrics.names import METRIC_NAMES

LOG = logging.getLogger(__name__)
HISTORY_FILE = "history.jsonl"
CURVES_FILE = "curves.png"
_PREFIXES = ("val_", "test_", "val/", "test/")
_X_KEYS = ("epoch", "step")


def read_history(path: Union[str, Path]) -> list[dict[str, Any]]:
    """Rows of a ``history.jsonl`` (one JSON object a line); blank and broken lines are skipped."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            LOG.warning("%s:%d: not JSON, skipped (a run interrupted while writing?)", path, n)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


def _metric_name(key: str) -> str:
    for p in _PREFIXES:
        if key.startswith(p):
            return key[len(p):]
    return key


def _keys(history: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in history:
        for k, v in row.items():
            if _is_number(v):
                seen.setdefault(k, None)
    return list(seen)


def _series(history: Sequence[Mapping[str, Any]], x: Sequence[float], key: str
            ) -> tuple[np.ndarray, np.ndarray]:
    pts = [(xi, float(row[key])) for xi, row in zip(x, history) if _is_number(row.get(key))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*pts)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _x_axis(history: Sequence[Mapping[str, Any]]) -> tuple[list[float], str]:
    for key in _X_KEYS:
        if all(_is_number(row.get(key)) for row in history):
            return [float(row[key]) for row in history], key
    return [float(i + 1) for i in range(len(history))], "row"


def plot_run_curves(history: Union[Sequence[Mapping[str, Any]], str, Path], path: Union[str, Path],
                    *, metrics: Optional[Iterable[str]] = None, title: Optional[str] = None,
                    best: str = "CIDEr", dpi: int = 150) -> Path:
    """Draw losses (train/val) | caption metrics | learning rate, and save to ``path``.

    Args:
        history: the rows, or the path of a ``history.jsonl``.
        path: output file (.png, .pdf or .svg).
        metrics: extra numeric keys to draw in the metric panel.
        title: figure title.
        best: the metric whose best epoch is marked (if present; also matched with a prefix).
        dpi: resolution of raster output.

    Returns:
        The path written. An empty history still writes a figure saying so.
    """
    if isinstance(history, (str, Path)):
        history = read_history(history)
    history = list(history)
    path = Path(path)
    x, x_label = _x_axis(history)
    keys = _keys(history)
    extra = set(metrics or ())
    loss_keys = [k for k in keys if "loss" in k.lower()]
    lr_keys = [k for k in keys if k == "lr" or k.startswith("lr_") or k.endswith("_lr")]
    metric_keys = [k for k in keys if (_metric_name(k) in METRIC_NAMES or k in extra)
                   and k not in loss_keys and k not in lr_keys]

    panels = [("loss", loss_keys), ("metrics", metric_keys)] + ([("learning rate", lr_keys)] if lr_keys else [])
    widths = [1.0, 1.0] + ([0.6] if lr_keys else [])
    fig = Figure(figsize=(4.2 * sum(widths) + 0.4, 3.4), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(panels), gridspec_kw={"width_ratios": widths})
    for ax, (name, ks) in zip(axes, panels):
        ax.set_title(name)
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
        if x_label in _X_KEYS:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        drawn = False
        for k in ks:
            xs, ys = _series(history, x, k)
            if xs.size == 0:
                continue
            style = "--" if k.lower().startswith(("val", "test")) and name == "loss" else "-"
            ax.plot(xs, ys, style, marker="o" if xs.size < 40 else None, markersize=3, label=k)
            drawn = True
            if name == "metrics" and _metric_name(k) == best and ys.size:
                i = int(np.argmax(ys))
                ax.scatter([xs[i]], [ys[i]], s=90, facecolors="none", edgecolors="black", zorder=5,
                           label=f"best {k} {ys[i]:.3g} ({x_label} {xs[i]:g})")
        if name == "learning rate" and drawn and all(
                v > 0 for k in ks for v in _series(history, x, k)[1]):
            ax.set_yscale("log")
        if drawn:
            ax.legend(fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def plot_run(run_dir: Union[str, Path], path: Optional[Union[str, Path]] = None, **kwargs: Any) -> Path:
    """Read ``run_dir/history.jsonl`` and write ``run_dir/curves.png`` (or ``path``); returns it."""
    run_dir = Path(run_dir)
    hist = run_dir / HISTORY_FILE
    if not hist.is_file():
        raise FileNotFoundError(f"no {HISTORY_FILE} in {run_dir}")
    kwargs.setdefault("title", run_dir.name)
    return plot_run_curves(read_history(hist), path if path is not None else run_dir / CURVES_FILE,
                           **kwargs)
