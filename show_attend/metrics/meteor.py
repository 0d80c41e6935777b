"""METEOR 1.5 through its line protocol, with deadlines and a guaranteed shutdown of the JVM.

pycocoevalcap's ``Meteor`` reads from a JVM with no timeout and never drains its stderr, so a bad
line or a failed start hangs the interpreter (even at exit). :class:`MeteorScorer` speaks the same
protocol to the same jar with the same command line (identical scores), safely.
"""
from __future__ import annotations

import queue
import subprocess
import threading
import time
import weakref
from collections import deque
from typing import Hashable, Mapping, Optional, Sequence

from .java import MetricsError, java_executable, kill_process, pycocoevalcap_dir
from .ptb_tokenizer import normalize_caption

METEOR_JAR = "meteor-1.5.jar"


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
        if not (meteor_dir / METEOR_JAR).is_file():
            raise MetricsError(f"METEOR jar missing: {meteor_dir / METEOR_JAR}")
        cmd = [java, "-jar", "-Xmx2G", METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            proc = subprocess.Popen(cmd, cwd=str(meteor_dir), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise MetricsError(f"could not start METEOR: {exc}") from exc
        self._proc = proc
        self._lines = queue.Queue()
        self._stderr = deque(maxlen=50)
        self._started = False
        self._finalizer = weakref.finalize(self, kill_process, proc)
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
            self._finalizer()  # runs kill_process once
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


