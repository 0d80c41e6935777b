"""What an evaluation writes: the COCO-format files, ``metrics.json``, ``report.md`` and ``samples.txt``.

    <out>/results.json      COCO results [{"image_id", "caption"}] (what the COCO server takes)
    <out>/annotations.json  the references in COCO's captions_*.json layout
    <out>/metrics.json      {"metrics": 0-1 scores, "settings": how they were made, "grounding": ...,
                            "entities_grounding": ... (with data.entities_dir)}
    <out>/report.md         the table x100, the settings, the grounding scores, best and worst images
    <out>/samples.txt       image id, file name and caption per line
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from ..metrics.coco_format import write_annotations, write_results
from ..utils.files import atomic_write_json, atomic_write_text, json_safe
from ..utils.markdown import markdown_table
from .entities_report import entities_markdown


def write_evaluation(out: Path, *, results: dict[str, str], references: dict[str, list[str]],
                     image_names: dict[str, str], scores: dict[str, float], settings: dict[str, Any],
                     table: str, per_image_cider: dict[str, float], grounding: dict[str, Any],
                     entities_grounding: Optional[dict[str, Any]] = None) -> None:
    """Write an evaluation folder (see the module docstring); ``references`` cover ``results``."""
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / "results.json", results)
    write_annotations(out / "annotations.json", references, image_names=image_names)
    metrics = {"metrics": dict(scores), "settings": settings}
    if grounding:
        metrics["grounding"] = grounding
    if entities_grounding:
        metrics["entities_grounding"] = entities_grounding
    atomic_write_json(out / "metrics.json", json_safe(metrics))
    atomic_write_text(out / "report.md", report_markdown(table, settings, results, references, per_image_cider,
                                                         grounding, entities_grounding=entities_grounding))
    atomic_write_text(out / "samples.txt", "".join(
        f"{image_id}\t{image_names.get(image_id, '')}\t{cap}\n" for image_id, cap in results.items()))


def _offset_sentence(offset: Optional[Sequence[float]]) -> str:
    if offset is None:
        return ""
    return (f" On average the peak cell's centre lies {offset[0]:+.2f} cells right and {offset[1]:+.2f} cells "
            "down of the named box's centre.")


def _grounding_lines(grounding: dict[str, Any]) -> list[str]:
    def fmt(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    table = markdown_table(
        ["", "model", "uniform attention (box's share of the image)", "chance (peak cell drawn uniformly)"],
        [["peak inside the box (hit rate)", fmt(grounding["hit_rate"]), fmt(grounding["uniform_mass"]),
          fmt(grounding["uniform_hit_rate"])],
         ["attention mass inside the box", fmt(grounding["mass_in_box"]), fmt(grounding["uniform_mass"]), ""],
         ["peak cell on or next to the box (overlaps it)", fmt(grounding.get("near_rate")), "",
          fmt(grounding.get("uniform_near_rate"))]])
    return ["## Attention grounding (does the model look where it speaks?)", "",
            "For each generated colour or shape word that names an object of the image: is the "
            "attention peak of that step inside the object's box, and how much attention mass "
            "falls inside it. Uniform attention would score the box's share of the image.", "",
            table, "", f"{grounding['n_words']} grounded colour/shape words; "
            f"{grounding.get('n_unmatched', 0)} generated object words name no object in the image."
            + _offset_sentence(grounding.get("mean_peak_offset")), ""]


def report_markdown(table: str, settings: dict[str, Any], results: dict[str, str],
                    refs: dict[str, list[str]], per_image: dict[str, float], grounding: dict[str, Any],
                    n: int = 5, entities_grounding: Optional[dict[str, Any]] = None) -> str:
    """``report.md``: the metrics table, how it was made, the grounding scores (synthetic shapes; Flickr30k
    Entities), the best and worst images."""
    lines = [f"# Evaluation: {settings['split']} split, beam {settings['beam_size']}", "",
             f"Checkpoint `{settings['checkpoint']}` (epoch {settings['epoch']}); {settings['images']} images; "
             f"encoder {settings['encoder']} ({settings['encoder_weights']}), grid "
             f"{settings['grid_size']}x{settings['grid_size']}, input {settings['image_size']} px "
             f"({settings['resize_mode']}); tokenizer: {settings['tokenizer']}.", "", table, ""]
    if settings.get("skipped_metrics"):
        lines += ["Skipped: " + "; ".join(f"{k} ({v})" for k, v in settings["skipped_metrics"].items()), ""]
    if grounding:
        lines += _grounding_lines(grounding)
    if entities_grounding:
        lines += entities_markdown(entities_grounding)
    if per_image:
        ranked = sorted(per_image, key=lambda k: per_image[k])
        for title, ids in (("Best", ranked[::-1][:n]), ("Worst", ranked[:n])):
            lines += [f"## {title} {len(ids)} images by CIDEr", ""]
            for image_id in ids:
                lines.append(f"- **{image_id}** (CIDEr {per_image[image_id]:.3f}): *{results[image_id]}*")
                lines += [f"  - {r}" for r in refs[image_id]]
            lines.append("")
    return "\n".join(lines)
