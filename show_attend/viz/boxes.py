"""Human boxes in the attention figures and galleries (Flickr30k Entities).

When a captioned image has Entities annotations (``data.entities_dir``, or ``visualize --entities``),
each generated word that names an annotated phrase of the image (the head-noun match of
``evaluation.entities_grounding.match_generated``) gets the phrase's boxes drawn over its heatmap,
and its attention mass inside them in its label. A gallery lists the best and worst grounded
words of the images it shows, linked to their figures.
"""
from __future__ import annotations

import html
from typing import Any, Optional, Sequence, Union
from urllib.parse import quote

from ..data.boxes import FrameGrid
from ..data.entities import Entities, EntitiesError
from ..data.transforms import ImageTransform
from ..evaluation.entities_grounding import WordBox, word_boxes
from ..model.geometry import uniform_geometry


def open_entities(root: Union[str, Entities, None]) -> tuple[Optional[Entities], str]:
    """An Entities reader for ``root``, or None and why ('' when no folder was given)."""
    if root is None or isinstance(root, Entities):
        return root, ""
    if not str(root):
        return None, ""
    try:
        return Entities(root), ""
    except EntitiesError as exc:
        return None, f"no human boxes drawn: {exc}"


def result_word_boxes(result: Any, entities: Optional[Entities], image_name: str, cfg: Any
                      ) -> Optional[list[Optional[WordBox]]]:
    """Per word of an ``AttentionResult`` its human boxes and mass, or None when the image has no annotations."""
    if entities is None or result.decoded.alphas is None or not result.decoded.words:
        return None
    image = entities.get(image_name)
    if image is None:
        return None
    geometry = result.geometry or uniform_geometry(int(result.grid_size))
    transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode, cfg.encoder.name)
    return word_boxes(result.decoded.words, result.decoded.alphas, image, result.image.size, transform,
                      FrameGrid.of(cfg.encoder.image_size, geometry))


def word_records(words: Sequence[str], boxes: Optional[Sequence[Optional[WordBox]]]) -> Optional[list[dict]]:
    """The grounded words of one caption for ``gallery.json``: index, word, mass, hit, uniform, chains."""
    if boxes is None:
        return None
    return [{"index": t, "word": w, "mass": round(b.mass, 4), "hit": b.hit, "uniform": round(b.uniform, 4),
             "chains": list(b.chains)} for t, (w, b) in enumerate(zip(words, boxes)) if b is not None]


def best_worst_html(entries: Sequence[Any], n: int = 10) -> str:
    """A page section: the ``n`` best and worst grounded words (mass in the human box) of the entries shown."""
    words = [(w["mass"], w["uniform"], w["word"], e.name, e.caption) for e in entries
             for w in (getattr(e, "entities", None) or [])]
    if not words:
        return ""
    words.sort(key=lambda r: r[0])

    def items(rows: Sequence[tuple]) -> str:
        return "".join(f"<li><a href='#{html.escape(quote(name), quote=True)}'>{html.escape(word)}</a> "
                       f"{mass:.2f} in the box (uniform {uniform:.2f}) <span class='meta'>in "
                       f"&ldquo;{html.escape(caption)}&rdquo;</span></li>" for mass, uniform, word, name, caption in rows)

    k = min(n, len(words))
    return ("<div class='entry'><h2>Human boxes (Flickr30k Entities)</h2><p class='meta'>"
            f"{len(words)} generated words name an annotated phrase of their image; each panel draws the phrase's "
            "boxes and the word's attention mass inside them.</p>"
            f"<h3>Best grounded {k}</h3><ol>{items(words[::-1][:k])}</ol>"
            f"<h3>Worst grounded {k}</h3><ol>{items(words[:k])}</ol></div>")
