"""Caption metrics: the one place BLEU, METEOR, ROUGE-L, CIDEr(-D) and SPICE are computed.

:func:`score_captions` gives the numbers pycocoevalcap's ``COCOEvalCap`` would give (same
tokenizer, same scorers, 0-1 scale), without its traps:

* ``COCOEvalCap.evaluate()`` builds SPICE first, and SPICE's constructor downloads Stanford
  CoreNLP (a network call that fails offline and aborts the whole evaluation). Here each scorer
  is called directly (``Bleu(4)``, ``Rouge()``, ``Cider()`` from pycocoevalcap; METEOR and SPICE
  through the wrappers below) and SPICE runs only when its jars are all present.
* ``PTBTokenizer`` writes its temporary file next to its jar, inside site-packages (fails on a
  read-only install), and returns silently misaligned or empty tokens when Java fails or a caption
  holds a line break other than ``\\n`` (``\\r``, form feed, U+2028, ...). Here the same Java
  command runs on a file in a private temporary directory, every caption is whitespace-normalised
  first, and the output must have exactly one line per caption.
* pycocoevalcap's ``Meteor`` reads from a JVM with no timeout and never drains its stderr, so a bad
  line or a failed start hangs the interpreter (even at exit). :class:`MeteorScorer` speaks the
  same protocol to the same jar with the same command line (identical scores) but with deadlines,
  cleaned input and guaranteed shutdown of the JVM.
* CIDEr-D's IDF comes from the references being scored, so :func:`score_captions` must be called
  once on the whole split; never average CIDEr over batches.
* Without Java (e.g. on GPU machines), the pure-Python tokenizer :mod:`show_attend.tokenizer`
  (which reproduces the Java one) is used, and METEOR and SPICE are skipped with a warning.
"""
from __future__ import annotations

import importlib.util
import json
import math
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
import weakref
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Iterable, Mapping, Optional, Sequence

from show_attend.tokenizer import PUNCTUATION, normalize_caption, tokenize_lines

#: Metric names as pycocoevalcap reports them (0-1 scale).
METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
#: Scorers :func:`score_captions` runs by default ("Bleu" stands for Bleu_1..Bleu_4).
DEFAULT_METRICS = ("Bleu", "METEOR", "ROUGE_L", "CIDEr", "SPICE")

_PTB_JAR = "stanford-corenlp-3.4.1.jar"
_METEOR_JAR = "meteor-1.5.jar"
_SPICE_JAR = "spice-1.0.jar"


class MetricsError(RuntimeError):
    """A metric backend (Java tokenizer, METEOR or SPICE) failed."""


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


# --------------------------------------------------------------------------------------------
# Locating Java and pycocoevalcap's jars
# --------------------------------------------------------------------------------------------

def pycocoevalcap_dir() -> Path:
    """Directory of the installed pycocoevalcap package (it holds the jars)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MetricsError("pycocoevalcap is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def java_executable(timeout: float = 30.0) -> Optional[str]:
    """Path of a working ``java`` on PATH, or ``None`` (missing, or ``java -version`` fails)."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        proc = subprocess.run([java, "-version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return java if proc.returncode == 0 else None


# --------------------------------------------------------------------------------------------
# Tokenization
# --------------------------------------------------------------------------------------------

def _drop_punctuation(line: str) -> str:
    """pycocoevalcap's post-processing of one PTBTokenizer output line."""
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATION)


def tokenize_ptb_java(captions: Sequence[str], *, java: Optional[str] = None,
                      timeout: float = 600.0) -> list:
    """Tokenize captions with the Stanford PTBTokenizer exactly as pycocoevalcap does.

    Same jar and command line (``-preserveLines -lowerCase``) and same punctuation removal, but
    the input file lives in a private temporary directory, captions are whitespace-normalised so
    each is one line, and a failing Java or a wrong number of output lines raises
    :class:`MetricsError` instead of silently misaligning captions.

    Returns one space-separated token string per caption.
    """
    captions = list(captions)
    if not captions:
        return []
    java = java or java_executable()
    if java is None:
        raise MetricsError("java not found on PATH")
    jar = pycocoevalcap_dir() / "tokenizer" / _PTB_JAR
    if not jar.is_file():
        raise MetricsError(f"Stanford tokenizer jar missing: {jar}")
    text = "\n".join(normalize_caption(c) for c in captions)
    with tempfile.TemporaryDirectory(prefix="ptbtok_") as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_bytes(text.encode("utf-8"))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(path)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MetricsError(f"PTBTokenizer timed out after {timeout:.0f} s") from exc
        except OSError as exc:
            raise MetricsError(f"could not run java: {exc}") from exc
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise MetricsError(f"PTBTokenizer failed (exit {proc.returncode}): {err[-2000:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if len(lines) != len(captions):
        raise MetricsError(f"PTBTokenizer returned {len(lines)} lines for {len(captions)} "
                           f"captions; stderr: {err[-2000:]}")
    return [_drop_punctuation(line) for line in lines]


def tokenize_python(captions: Sequence[str]) -> list:
    """Tokenize captions with the pure-Python PTB tokenizer (same output format)."""
    return [" ".join(tokens) for tokens in tokenize_lines(list(captions))]


# --------------------------------------------------------------------------------------------
# METEOR
# --------------------------------------------------------------------------------------------

def _kill_process(proc: subprocess.Popen) -> None:
    """Close pipes and stop a subprocess for good (used by close() and at garbage collection)."""
    for stream in (proc.stdin,):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - kill() is not ignorable
        pass
    for stream in (proc.stdout, proc.stderr):  # the reader threads see EOF or a closed file
        try:
            if stream is not None:
                stream.close()
        except (OSError, ValueError):
            pass


def _meteor_clean(text: str) -> str:
    """Make a caption safe for METEOR's line protocol (one line, no ``|||`` separator)."""
    if "|||" in text:
        text = text.replace("|||", "")
    if any(ch in text for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        text = normalize_caption(text)
    return text


class MeteorScorer:
    """METEOR 1.5 through its ``-stdio`` protocol, like pycocoevalcap's ``Meteor``, but safe.

    Runs ``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`` in pycocoevalcap's meteor
    directory (the command pycocoevalcap uses, so scores are identical), with:

    * a deadline on every exchange (the JVM is killed and :class:`MetricsError` raised on expiry;
      starting it takes 10-20 s, mostly loading the paraphrase table);
    * stdout and stderr drained by threads (pycocoevalcap never reads stderr, so a chatty JVM can
      block), writes done by a thread so a stuck JVM cannot block the caller;
    * captions cleaned of line breaks and ``|||`` (either desynchronises the protocol and hangs);
    * the JVM stopped on :meth:`close`, on error, on garbage collection and at interpreter exit.

    Use as a context manager, or keep one instance for several :meth:`score` calls (the JVM
    start is the expensive part).
    """

    def __init__(self, *, java: Optional[str] = None, start_timeout: float = 180.0,
                 timeout: float = 600.0) -> None:
        self.java = java
        self.start_timeout = start_timeout
        self.timeout = timeout
        self._proc: Optional[subprocess.Popen] = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: deque = deque(maxlen=50)
        self._lock = threading.Lock()
        self._finalizer = None
        self._started = False

    # -- process management -------------------------------------------------------------------
    def start(self) -> "MeteorScorer":
        """Start the JVM (idempotent)."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        java = self.java or java_executable()
        if java is None:
            raise MetricsError("java not found on PATH")
        meteor_dir = pycocoevalcap_dir() / "meteor"
        if not (meteor_dir / _METEOR_JAR).is_file():
            raise MetricsError(f"METEOR jar missing: {meteor_dir / _METEOR_JAR}")
        cmd = [java, "-jar", "-Xmx2G", _METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            proc = subprocess.Popen(cmd, cwd=str(meteor_dir), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise MetricsError(f"could not start METEOR: {exc}") from exc
        self._proc = proc
        self._lines = queue.Queue()
        self._stderr = deque(maxlen=50)
        self._started = False
        self._finalizer = weakref.finalize(self, _kill_process, proc)
        threading.Thread(target=self._pump_stdout, args=(proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(proc, self._stderr), daemon=True).start()
        return self

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen, lines: "queue.Queue[Optional[str]]") -> None:
        try:
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        lines.put(None)  # end of stream

    @staticmethod
    def _pump_stderr(proc: subprocess.Popen, tail: deque) -> None:
        try:
            for raw in iter(proc.stderr.readline, b""):
                tail.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        """Stop the JVM (safe to call repeatedly)."""
        if self._finalizer is not None:
            self._finalizer()  # runs _kill_process once
            self._finalizer = None
        self._proc = None

    def __enter__(self) -> "MeteorScorer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- protocol -----------------------------------------------------------------------------
    def _fail(self, message: str) -> MetricsError:
        tail = " | ".join(list(self._stderr)[-5:])
        self.close()
        return MetricsError(message + (f" (stderr: {tail})" if tail else ""))

    def _read(self, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        try:
            line = self._lines.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            raise self._fail("METEOR did not answer in time") from None
        if line is None:
            raise self._fail("METEOR exited unexpectedly")
        return line.strip()

    def _write(self, data: bytes) -> None:
        proc = self._proc

        def writer() -> None:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the reader notices the dead process

        threading.Thread(target=writer, daemon=True).start()

    def score(self, gts: Mapping[Hashable, Sequence[str]], res: Mapping[Hashable, Sequence[str]],
              ) -> tuple:
        """Corpus METEOR and per-image scores, like pycocoevalcap's ``Meteor.compute_score``.

        ``gts[id]`` is the list of tokenized references, ``res[id]`` a one-element list with the
        tokenized hypothesis. Returns ``(score, [score per image in gts order])``.
        """
        if set(gts.keys()) != set(res.keys()):
            raise ValueError("gts and res must have the same image ids")
        img_ids = list(gts.keys())
        if not img_ids:
            raise ValueError("nothing to score")
        with self._lock:
            self.start()
            first = not self._started
            deadline = time.monotonic() + self.timeout + (self.start_timeout if first else 0.0)
            score_lines = []
            for i in img_ids:
                hyps = res[i]
                if len(hyps) != 1:
                    raise ValueError(f"image {i!r}: expected exactly one hypothesis")
                hyp = _meteor_clean(hyps[0]).replace("  ", " ")
                refs = [_meteor_clean(r) for r in gts[i]]
                if not refs:
                    raise ValueError(f"image {i!r}: no references")
                score_lines.append(" ||| ".join(("SCORE", " ||| ".join(refs), hyp)) + "\n")
            self._write("".join(score_lines).encode("utf-8"))
            stats = [self._read(deadline) for _ in img_ids]
            self._started = True
            eval_line = "EVAL" + "".join(f" ||| {s}" for s in stats) + "\n"
            self._write(eval_line.encode("utf-8"))
            try:
                scores = [float(self._read(deadline)) for _ in img_ids]
                score = float(self._read(deadline))
            except ValueError as exc:
                raise self._fail(f"METEOR returned a non-number: {exc}") from exc
        return score, scores


# --------------------------------------------------------------------------------------------
# SPICE
# --------------------------------------------------------------------------------------------

def spice_unavailable_reason(java: Optional[str] = None) -> Optional[str]:
    """``None`` if SPICE can run offline, else why not (checked without network or Java start).

    SPICE needs Java, ``spice-1.0.jar`` and every jar on its manifest Class-Path under ``lib/``,
    notably Stanford CoreNLP 3.6.0 and its models, which pycocoevalcap only downloads on first
    use (``pycocoevalcap/spice/get_stanford_models.py``, ~1 GB, needs network).
    """
    if java is None:
        return "java not found on PATH"
    try:
        spice_dir = pycocoevalcap_dir() / "spice"
    except MetricsError as exc:
        return str(exc)
    jar = spice_dir / _SPICE_JAR
    if not jar.is_file():
        return f"{jar} missing"
    try:
        with zipfile.ZipFile(jar) as zf:
            manifest = zf.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        return f"cannot read {jar}: {exc}"
    # Manifest lines are wrapped at 72 bytes with a leading space on continuation lines.
    unwrapped = manifest.replace("\r\n", "\n").replace("\n ", "")
    class_path: list = []
    for line in unwrapped.split("\n"):
        if line.startswith("Class-Path:"):
            class_path = line.split(":", 1)[1].split()
    missing = [p for p in class_path if not (spice_dir / p).is_file()]
    if missing:
        return ("SPICE needs Stanford CoreNLP 3.6.0 jars that are not installed (missing: "
                + ", ".join(missing) + "); pycocoevalcap downloads them on first use, which "
                "needs network: run `python -m pycocoevalcap.spice.get_stanford_models` once")
    return None


def run_spice(gts: Mapping[Hashable, Sequence[str]], res: Mapping[Hashable, Sequence[str]], *,
              java: str, timeout: float = 3600.0, cache_dir: Optional[str] = None) -> tuple:
    """SPICE like pycocoevalcap's ``Spice.compute_score`` (same jar and options), run safely.

    Input and output JSON live in a private temporary directory (pycocoevalcap writes into
    site-packages), the run has a deadline, and failures raise :class:`MetricsError`.
    Returns ``(mean F-score, [F-score per image in gts order])`` (NaN where SPICE gives none).
    """
    import numpy as np

    img_ids = list(gts.keys())
    spice_dir = pycocoevalcap_dir() / "spice"
    with tempfile.TemporaryDirectory(prefix="spice_") as tmp:
        data = [{"image_id": k, "test": res[i][0], "refs": list(gts[i])}
                for k, i in enumerate(img_ids)]
        in_file = Path(tmp) / "input.json"
        out_file = Path(tmp) / "output.json"
        in_file.write_text(json.dumps(data), encoding="utf-8")
        cmd = [java, "-jar", "-Xmx8G", _SPICE_JAR, str(in_file)]
        if cache_dir:
            cmd += ["-cache", str(cache_dir)]
        cmd += ["-out", str(out_file), "-subset", "-silent"]
        try:
            proc = subprocess.run(cmd, cwd=str(spice_dir), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MetricsError(f"SPICE timed out after {timeout:.0f} s") from exc
        if proc.returncode != 0 or not out_file.is_file():
            err = proc.stderr.decode("utf-8", "replace")[-2000:]
            raise MetricsError(f"SPICE failed (exit {proc.returncode}): {err}")
        results = json.loads(out_file.read_text(encoding="utf-8"))

    def to_float(value) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            return float("nan")

    by_index = {item["image_id"]: to_float(item["scores"]["All"]["f"]) for item in results}
    scores = [by_index.get(k, float("nan")) for k in range(len(img_ids))]
    return float(np.mean(np.array(scores))), scores


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------

def _canonical_metrics(metrics: Iterable[str]) -> list:
    names = {"bleu": "Bleu", "meteor": "METEOR", "rouge": "ROUGE_L", "rouge_l": "ROUGE_L",
             "cider": "CIDEr", "cider-d": "CIDEr", "spice": "SPICE"}
    out: list = []
    for m in metrics:
        key = str(m).lower()
        if key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4"):
            key = "bleu"
        if key not in names:
            raise ValueError(f"unknown metric {m!r}; choose from {sorted(set(names.values()))}")
        if names[key] not in out:
            out.append(names[key])
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

    wanted = _canonical_metrics(metrics)
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
            report.scores[name] = float(score[n])
            report.per_image[name] = {i: float(s) for i, s in zip(img_ids, scores[n])}
        report.timings["Bleu"] = time.perf_counter() - t0
    if "ROUGE_L" in wanted:
        t0 = time.perf_counter()
        score, scores = Rouge().compute_score(gts, res)
        report.scores["ROUGE_L"] = float(score)
        report.per_image["ROUGE_L"] = {i: float(s) for i, s in zip(img_ids, scores)}
        report.timings["ROUGE_L"] = time.perf_counter() - t0
    if "CIDEr" in wanted:
        t0 = time.perf_counter()
        if not any(r.strip() for refs in gts.values() for r in refs):
            report.skipped["CIDEr"] = "all references are empty after tokenization"
        else:
            if len(img_ids) < 2:
                report.notes.append("CIDEr with one image is degenerate (IDF over one document)")
            score, scores = Cider().compute_score(gts, res)
            report.scores["CIDEr"] = float(score)
            report.per_image["CIDEr"] = {i: float(s) for i, s in zip(img_ids, scores)}
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
                report.scores["METEOR"] = float(score)
                report.per_image["METEOR"] = {i: float(s) for i, s in zip(img_ids, scores)}
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
