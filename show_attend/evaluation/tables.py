"""A results table from evaluation folders: one row per ``metrics.json`` that tools/evaluate.py wrote.

    rows = [read_row(p) for p in ["runs/a/eval_val_b3", "runs/b/eval_val_b3"]]
    print(results_markdown(rows))

Runs compared at a fixed training budget (an ablation) can be read from their ``history.jsonl``
instead: ``read_history_row("runs/abl_lambda0", epoch=3)`` takes the validation decoded after that
epoch (the trainer's greedy or small-beam decoding, scored by the same pycocoevalcap code).

``grounding_markdown(rows)`` tabulates the attention grounding score of evaluations on the synthetic
shapes data instead (hit rate and mass in box against the uniform baselines), or, for evaluations
with Flickr30k Entities boxes (``data.entities_dir``), their real-photo grounding (``entities_report``).

Each row says what produced it (run, objective, encoder weights, grid, beam, split, images) next
to the scores, shown x100 as in the paper's Table 1, so a table in RESULTS.md is never typed by hand.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..config import weights_label
from ..metrics.names import SHORT_LABELS, TABLE_METRICS as COLUMNS
from ..utils.markdown import markdown_table
from .entities_report import entities_results_markdown


def read_row(path: Union[str, Path], label: Optional[str] = None) -> dict[str, Any]:
    """Read an evaluation folder (or its ``metrics.json``) into a flat row."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json at {path}; run tools/evaluate.py --out there first")
    data = json.loads(path.read_text())
    settings = data.get("settings", {})
    return {
        "label": label or settings.get("run") or path.parent.name,
        "grounding": data.get("grounding", {}), "entities_grounding": data.get("entities_grounding", {}),
        "settings": settings,
        "objective": settings.get("objective", "xe"),
        "weights": weights_label(settings.get("encoder_weights", "?")),
        "grid": settings.get("grid_size"), "beam": settings.get("beam_size"),
        "split": settings.get("split"), "images": settings.get("images"),
        "tokenizer": settings.get("tokenizer"), "scores": data.get("metrics", {}), "source": str(path),
    }


def read_history_row(run_dir: Union[str, Path], epoch: int, label: Optional[str] = None) -> dict[str, Any]:
    """The validation scores a run's trainer logged after ``epoch`` (``history.jsonl``), as a row."""
    import yaml

    run_dir = Path(run_dir)
    history = run_dir / "history.jsonl"
    if not history.is_file():
        raise FileNotFoundError(f"no history.jsonl in {run_dir}; is it a run folder of tools/train.py?")
    rows = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    match = [r for r in rows if r.get("epoch") == epoch and "CIDEr" in r]
    if not match:
        done = [r.get("epoch") for r in rows if "CIDEr" in r]
        raise FileNotFoundError(f"{history} has no decoded validation after epoch {epoch} (it has {done})")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    train, encoder = cfg.get("train", {}), cfg.get("encoder", {})
    return {
        "label": label or f"{cfg.get('name', run_dir.name)} @ epoch {epoch}",
        "objective": train.get("objective", "xe"),
        "weights": weights_label(encoder.get("weights", "?")),
        "grid": encoder.get("grid_size"), "beam": train.get("val_beam_size"), "split": "val",
        "images": train.get("val_max_images") or "all", "tokenizer": None,
        "scores": {c: match[-1][c] for c in COLUMNS if c in match[-1]}, "source": str(history),
    }


def results_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of rows (scores x100; a metric that was not computed shows as n/a)."""
    head = ["configuration", "objective", "weights", "grid", "beam", "split"] + [SHORT_LABELS[c] for c in COLUMNS]
    table = []
    for r in rows:
        cells = [r["label"], r["objective"], r["weights"], f"{r['grid']}x{r['grid']}", str(r["beam"]),
                 f"{r['split']} ({r['images']})"]
        cells += [f"{100 * r['scores'][c]:.1f}" if c in r["scores"] else "n/a" for c in COLUMNS]
        table.append(cells)
    return markdown_table(head, table, ["left"] * 6 + ["right"] * len(COLUMNS))


def _run_config(source: Union[str, Path]) -> dict[str, Any]:
    """The config.yaml of the run an evaluation folder sits in (``runs/<name>/eval_*/``), or {}."""
    import yaml

    path = Path(source).parent.parent / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _fmt(value: Optional[float], spec: str) -> str:
    return "n/a" if value is None else spec.format(value)  # None: no grounded word was generated


def grounding_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The attention grounding scores of evaluation rows (synthetic data): the settings that shape
    attention, hit rate and mass-in-box next to their uniform-attention baselines, the near-miss
    rate (peak cell overlapping the box) and the mean peak offset from the box centre, and BLEU-4."""
    from ..model.geometry import pools_block5
    if rows and all(r.get("entities_grounding") for r in rows):  # scored against Flickr30k Entities boxes
        return entities_results_markdown(rows)
    head = ["configuration", "texture", "input", "grid", "pool", "annotations", "location", "h0", "lambda", "beam",
            "split", "hit rate", "uniform hit", "hit / uniform", "mass in box", "uniform mass",
            "mass / uniform", "peak on or next to box", "uniform", "peak offset (cells)", "B-4"]
    table = []
    for r in rows:
        g, s = r.get("grounding") or {}, r.get("settings") or {}
        if not g:
            raise ValueError(f"{r['source']} has no grounding score (evaluate on the synthetic shapes data)")
        model = s.get("model", {})
        texture = _run_config(r["source"]).get("data", {}).get("synthetic", {}).get("texture", "flat")
        pooled = pools_block5(r["grid"], s.get("image_size") or 0, s.get("encoder", "vgg16"))  # else the map is the grid
        cells = [r["label"], texture, f"{s.get('image_size')} px", f"{r['grid']}x{r['grid']}",
                 s.get("pool", "max") if pooled else "-",
                 model.get("annotation_norm", "none"), "yes" if model.get("attention_location") else "no",
                 model.get("init_state", "mean"), str(s.get("alpha_c")), str(r["beam"]),
                 f"{r['split']} ({r['images']})"]
        cells += [_fmt(g.get(k), "{:.3f}") for k in ("hit_rate", "uniform_hit_rate")]
        cells.append(_fmt(g.get("hit_rate_ratio"), "{:.1f}x"))
        cells += [_fmt(g.get(k), "{:.3f}") for k in ("mass_in_box", "uniform_mass")]
        cells.append(_fmt(g.get("mass_ratio"), "{:.1f}x"))
        cells += [_fmt(g.get(k), "{:.3f}") for k in ("near_rate", "uniform_near_rate")]
        offset = g.get("mean_peak_offset")  # None: evaluated before it was recorded, or no word
        cells.append("n/a" if offset is None else f"{offset[0]:+.2f}, {offset[1]:+.2f}")
        cells.append(f"{100 * r['scores']['Bleu_4']:.1f}" if "Bleu_4" in r["scores"] else "n/a")
        table.append(cells)
    return markdown_table(head, table, ["left"] * 11 + ["right"] * 10)
