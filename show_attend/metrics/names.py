"""The metric names, in one place: pycocoevalcap's keys, their labels, and the scorer groups.

pycocoevalcap reports ``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr`` and ``SPICE`` on
the 0-1 scale; reports and tables show them under :data:`LABELS` (long) or :data:`SHORT_LABELS`.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Iterable

#: Metric names as pycocoevalcap reports them (0-1 scale), in the order tables list them.
METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
#: The metrics of a captioning results table (SPICE needs a download, so it is not among them).
TABLE_METRICS = METRIC_NAMES[:-1]
#: Scorers :func:`show_attend.metrics.score_captions` runs by default ("Bleu" stands for Bleu_1..Bleu_4).
DEFAULT_METRICS = ("Bleu", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
#: What a training run's validation scores (METEOR's JVM takes 2 GB; only when it selects the model).
VALIDATION_METRICS = ("Bleu", "ROUGE_L", "CIDEr")
#: Report labels (as the paper and COCO tables write them).
LABELS = MappingProxyType({"Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2", "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4",
                           "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr", "SPICE": "SPICE"})
#: Short labels for wide tables.
SHORT_LABELS = MappingProxyType({"Bleu_1": "B-1", "Bleu_2": "B-2", "Bleu_3": "B-3", "Bleu_4": "B-4",
                                 "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr", "SPICE": "SPICE"})
_SCORERS = {"bleu": "Bleu", "meteor": "METEOR", "rouge": "ROUGE_L", "rouge_l": "ROUGE_L",
            "cider": "CIDEr", "cider-d": "CIDEr", "spice": "SPICE"}


def canonical_metrics(metrics: Iterable[str]) -> list:
    """Scorer names (``Bleu``, ``METEOR``, ...) for any spelling of a metric or scorer, in order."""
    out: list = []
    for m in metrics:
        key = str(m).lower()
        if key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4"):
            key = "bleu"
        if key not in _SCORERS:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(set(_SCORERS.values()))}")
        if _SCORERS[key] not in out:
            out.append(_SCORERS[key])
    return out
