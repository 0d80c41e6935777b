"""A decoded caption as JSON: the one shape ``POST /api/caption`` and ``show-attend caption --json``
write (words, the attention of each word as a flat g*g row-major grid, beta, scores)."""
from __future__ import annotations

import base64
import io
from typing import Any, Optional

from PIL import Image

from ..model.decoding import Decoded


def hypothesis_json(d: Decoded, attention: bool = True) -> dict[str, Any]:
    """One caption: words, log-probability, ranking score; with ``attention`` its alpha and beta per word."""
    out: dict[str, Any] = {"caption": " ".join(d.words), "log_prob": round(d.log_prob, 4), "finished": d.finished}
    if d.score is not None:
        out["score"] = round(d.score, 4)
    if attention:
        out["words"] = list(d.words)
        out["attention"] = (None if d.alphas is None else  # None: a model without attention
                            [[round(float(v), 5) for v in row] for row in d.alphas.tolist()])  # (T, g*g)
        out["beta"] = [round(float(b), 4) for b in d.betas.tolist()]  # (T,)
    return out


def caption_json(d: Decoded, grid_size: int, attention_note: str, attention: bool = True) -> dict[str, Any]:
    """The best caption, its grid and what its attention shows, and the beam's other hypotheses."""
    out = hypothesis_json(d, attention)
    if attention:
        out.update(grid=[grid_size, grid_size], attention_shown=attention_note)
    if d.alternatives:
        out["alternatives"] = [hypothesis_json(a, attention) for a in d.alternatives]
    return out


def preview_data_url(image: Image.Image, max_side: int, quality: int = 85) -> tuple[str, tuple[int, int]]:
    """The upright RGB photo the model saw, downscaled to ``max_side``, as a JPEG data URL; and its size."""
    w, h = image.size
    scale = min(1.0, max_side / max(w, h))
    small = image if scale >= 1.0 else image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                    Image.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), small.size


def rounded_box(box: Optional[tuple[float, ...]]) -> Optional[list[float]]:
    return None if box is None else [round(float(v), 2) for v in box]
