"""Caption metrics: the one place BLEU, METEOR, ROUGE-L, CIDEr(-D) and SPICE are computed.

:func:`score_captions` gives the numbers pycocoevalcap's ``COCOEvalCap`` would give (same
tokenizer, same scorers, 0-1 scale), without its traps:

* ``COCOEvalCap.evaluate()`` builds SPICE first, which downloads Stanford CoreNLP; here each scorer
  is called directly (``Bleu(4)``, ``Rouge()``, ``Cider()`` from pycocoevalcap; METEOR and SPICE
  through :mod:`.meteor` and :mod:`.spice`), and SPICE runs only when its jars are all present.
* ``PTBTokenizer`` is called through :func:`.java.tokenize_ptb_java` (private temp folder, one
  line per caption checked).
* CIDEr-D's IDF comes from the references being scored, so :func:`score_captions` must be called
  once on the whole split; never average CIDEr over batches.
* Without Java (e.g. on GPU machines), the pure-Python tokenizer :mod:`.ptb_tokenizer`
  (which reproduces the Java one) is used, and METEOR and SPICE are skipped with a warning.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping, Optional, Sequence

from .java import MetricsError, java_executable, tokenize_ptb_java, tokenize_python
from .meteor import MeteorScorer
from .names import DEFAULT_METRICS, canonical_metrics
from .spice import run_spice, spice_unavailable_reason


@dataclass
class ScoreReport:
    """Result of :func:`score_captions`.

    Attributes:
        scores: metric name (``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``,
            ``SPICE``) -> corpus score on pycocoevalcap's 0-1 scale.
        per_image: metric name -> {image_id: score} (every computed metric).
        tokenizer: ``"ptb-java"`` (Stanford PTBTokenizer via Java) or ``"python"``.
        skipped: metric name -> reason it was not computed.
        notes: human-readable remarks (fallbacks, ignored images, ...).
        timings: stage name -> seconds.
        n_images: number of images scored.
    """

    scores: dict
    per_image: dict
    tokenizer: str
    skipped: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    n_images: int = 0

    def record(self, name: str, corpus: float, img_ids: Sequence[Hashable], per_image: Sequence[float]) -> None:
        """Store one metric: its corpus score and each image's (in ``img_ids`` order)."""
        self.scores[name] = float(corpus)
        self.per_image[name] = {i: float(s) for i, s in zip(img_ids, per_image)}

    def to_dict(self, include_per_image: bool = False) -> dict:
        """JSON-serialisable dict (per-image scores only if asked; their keys become strings)."""
        out = {
            "scores": dict(self.scores),
            "scale": "0-1 (pycocoevalcap)",
            "tokenizer": self.tokenizer,
            "n_images": self.n_images,
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if include_per_image:
            out["per_image"] = {m: {str(k): v for k, v in d.items()}
                                for m, d in self.per_image.items()}
        return out


def _validate(results: Mapping, references: Mapping) -> tuple:
    if not results:
        raise ValueError("no results to score")
    missing = [k for k in results if k not in references]
    if missing:
        raise KeyError(f"{len(missing)} result image(s) have no references, e.g. {missing[:3]}")
    for k, cap in results.items():
        if not isinstance(cap, str):
            raise TypeError(f"result for image {k!r} must be a str, got {type(cap).__name__}")
        refs = references[k]
        if isinstance(refs, str) or not refs:
            raise ValueError(f"image {k!r}: references must be a non-empty list of str")
        for r in refs:
            if not isinstance(r, str):
                raise TypeError(f"image {k!r}: reference {r!r} is not a str")
    extra = len(set(references) - set(results))
    return list(results.keys()), extra


def _warn(report: ScoreReport, message: str) -> None:
    report.notes.append(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def score_captions(results: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                   *, tokenizer: str = "auto", metrics: Iterable[str] = DEFAULT_METRICS,
                   meteor_timeout: float = 600.0, spice_timeout: float = 3600.0,
                   meteor_scorer: Optional[MeteorScorer] = None,
                   spice_cache_dir: Optional[str] = None) -> ScoreReport:
    """Score generated captions against references with pycocoevalcap's metrics.

    Args:
        results: image id -> generated caption (raw text; may be empty). Ids may be ints (COCO)
            or strings (Flickr8k names); they are kept as given.
        references: image id -> list of raw reference captions. Must cover every result id;
            extra ids are ignored (with a note). Call once per split: CIDEr-D's IDF is computed
            from exactly the references scored here.
        tokenizer: ``"auto"`` (Java PTBTokenizer when Java works, else the Python port),
            ``"ptb"`` (Java required) or ``"python"``.
        metrics: any of ``"Bleu"`` (gives Bleu_1..4), ``"METEOR"``, ``"ROUGE_L"``, ``"CIDEr"``,
            ``"SPICE"``.
        meteor_timeout: seconds allowed for METEOR's scoring (JVM start-up gets extra time).
        spice_timeout: seconds allowed for SPICE.
        meteor_scorer: a running :class:`MeteorScorer` to reuse (it is not closed here).
        spice_cache_dir: optional SPICE parse cache directory.

    Returns:
        A :class:`ScoreReport`; metrics that could not run are in ``skipped`` with the reason.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    wanted = canonical_metrics(metrics)
    img_ids, extra = _validate(results, references)
    if tokenizer not in ("auto", "ptb", "python"):
        raise ValueError("tokenizer must be 'auto', 'ptb' or 'python'")
    report = ScoreReport(scores={}, per_image={}, tokenizer="", n_images=len(img_ids))
    if extra:
        report.notes.append(f"{extra} reference image(s) without a result were ignored "
                            "(CIDEr IDF uses only the scored images)")
    needs_java = {"METEOR", "SPICE"} & set(wanted)
    java = java_executable() if (tokenizer != "python" or needs_java) else None

    # -- tokenization (references and results as two streams, like COCOEvalCap) --------------
    t0 = time.perf_counter()
    ref_caps = [c for i in img_ids for c in references[i]]
    res_caps = [results[i] for i in img_ids]
    tok_refs = tok_res = None
    if tokenizer == "ptb" and java is None:
        raise MetricsError("tokenizer='ptb' needs Java, which is not on PATH")
    if tokenizer in ("auto", "ptb") and java is not None:
        try:
            tok_refs = tokenize_ptb_java(ref_caps, java=java)
            tok_res = tokenize_ptb_java(res_caps, java=java)
            report.tokenizer = "ptb-java"
        except MetricsError as exc:
            if tokenizer == "ptb":
                raise
            _warn(report, f"Java PTBTokenizer failed ({exc}); used the Python tokenizer")
    elif tokenizer == "auto":
        _warn(report, "java not found on PATH: used the pure-Python PTB tokenizer")
    if tok_refs is None:
        tok_refs = tokenize_python(ref_caps)
        tok_res = tokenize_python(res_caps)
        report.tokenizer = "python"
    gts: dict = {}
    pos = 0
    for i in img_ids:
        n = len(references[i])
        gts[i] = tok_refs[pos:pos + n]
        pos += n
    res = {i: [tok_res[k]] for k, i in enumerate(img_ids)}
    report.timings["tokenize"] = time.perf_counter() - t0

    # -- pure-Python scorers (pycocoevalcap's own code) ---------------------------------------
    if "Bleu" in wanted:
        t0 = time.perf_counter()
        score, scores = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            name = f"Bleu_{n + 1}"
            report.record(name, score[n], img_ids, scores[n])
        report.timings["Bleu"] = time.perf_counter() - t0
    if "ROUGE_L" in wanted:
        t0 = time.perf_counter()
        score, scores = Rouge().compute_score(gts, res)
        report.record("ROUGE_L", score, img_ids, scores)
        report.timings["ROUGE_L"] = time.perf_counter() - t0
    if "CIDEr" in wanted:
        t0 = time.perf_counter()
        if not any(r.strip() for refs in gts.values() for r in refs):
            report.skipped["CIDEr"] = "all references are empty after tokenization"
        else:
            if len(img_ids) < 2:
                report.notes.append("CIDEr with one image is degenerate (IDF over one document)")
            score, scores = Cider().compute_score(gts, res)
            report.record("CIDEr", score, img_ids, scores)
        report.timings["CIDEr"] = time.perf_counter() - t0

    # -- Java scorers ------------------------------------------------------------------------
    if "METEOR" in wanted:
        t0 = time.perf_counter()
        if java is None:
            report.skipped["METEOR"] = "java not found on PATH"
            _warn(report, "METEOR skipped: java not found on PATH")
        else:
            own = meteor_scorer is None
            scorer = meteor_scorer or MeteorScorer(java=java, timeout=meteor_timeout)
            try:
                score, scores = scorer.score(gts, res)
                report.record("METEOR", score, img_ids, scores)
            except MetricsError as exc:
                report.skipped["METEOR"] = str(exc)
                _warn(report, f"METEOR skipped: {exc}")
            finally:
                if own:
                    scorer.close()
        report.timings["METEOR"] = time.perf_counter() - t0
    if "SPICE" in wanted:
        t0 = time.perf_counter()
        reason = spice_unavailable_reason(java)
        if reason is None:
            try:
                score, scores = run_spice(gts, res, java=java, timeout=spice_timeout,
                                          cache_dir=spice_cache_dir)
                report.scores["SPICE"] = score
                report.per_image["SPICE"] = dict(zip(img_ids, scores))
            except MetricsError as exc:
                reason = str(exc)
        if reason is not None:
            report.skipped["SPICE"] = reason
            _warn(report, f"SPICE skipped: {reason}")
        report.timings["SPICE"] = time.perf_counter() - t0

    for name, value in report.scores.items():
        if isinstance(value, float) and math.isnan(value):
            report.notes.append(f"{name} is NaN")
    return report
