"""Java for pycocoevalcap: finding ``java`` and the jars, and the Stanford PTBTokenizer call.

``PTBTokenizer`` in pycocoevalcap writes its temporary file next to its jar, inside site-packages
(fails on a read-only install), and returns silently misaligned or empty tokens when Java fails or
a caption holds a line break other than ``\\n`` (``\\r``, form feed, U+2028, ...). Here the same
Java command runs on a file in a private temporary directory, every caption is
whitespace-normalised first, and the output must have exactly one line per caption.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from .ptb_tokenizer import PUNCTUATION, normalize_caption, tokenize_lines

PTB_JAR = "stanford-corenlp-3.4.1.jar"


class MetricsError(RuntimeError):
    """A metric backend (Java tokenizer, METEOR or SPICE) failed."""


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
    jar = pycocoevalcap_dir() / "tokenizer" / PTB_JAR
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


def kill_process(proc: subprocess.Popen) -> None:
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
