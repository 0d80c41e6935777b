"""Stage 5, the numbers: caption metrics as pycocoevalcap computes them. No torch in here.

    names.py          the metric names and labels (one list for the whole package)
    scoring.py        score_captions: BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE -> ScoreReport
    java.py           finding java and the jars; the Stanford PTBTokenizer call
    ptb_tokenizer.py  the pure-Python port of that tokenizer (also tokenises the training captions)
    ptb_rules.py      its character classes and rule actions
    meteor.py         METEOR 1.5's JVM, with deadlines and a guaranteed shutdown
    spice.py          SPICE, run only when its jars are installed
    cider.py          CIDEr-D in process (the self-critical reward; equals pycocoevalcap's Cider)
    coco_format.py    COCO results / annotation files, and scoring them back
"""
from .java import MetricsError, java_executable
from .meteor import MeteorScorer
from .names import DEFAULT_METRICS, LABELS, METRIC_NAMES, SHORT_LABELS, TABLE_METRICS, canonical_metrics
from .scoring import ScoreReport, score_captions

__all__ = ["DEFAULT_METRICS", "LABELS", "METRIC_NAMES", "SHORT_LABELS", "TABLE_METRICS", "MeteorScorer",
           "MetricsError", "ScoreReport", "canonical_metrics", "java_executable", "score_captions"]
