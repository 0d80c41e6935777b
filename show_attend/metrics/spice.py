"""SPICE, run only when it can run offline (its CoreNLP jars are a download pycocoevalcap defers).

``COCOEvalCap.evaluate()`` builds SPICE first, and SPICE's constructor downloads Stanford CoreNLP
(a network call that fails offline and aborts the whole evaluation); here SPICE is checked first
and skipped, with the reason, when its jars are missing.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Hashable, Mapping, Optional, Sequence

from .java import MetricsError, pycocoevalcap_dir

SPICE_JAR = "spice-1.0.jar"


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
    jar = spice_dir / SPICE_JAR
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
        cmd = [java, "-jar", "-Xmx8G", SPICE_JAR, str(in_file)]
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
