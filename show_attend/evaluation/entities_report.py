"""How the Flickr30k Entities grounding (``entities_grounding``) reads: console lines, report.md, results tables.

Every measure stands next to its baseline: attention correctness (mass in the boxes) next to uniform
attention's (the boxes' share of the input), the pointing hit rate next to chance (the share of cell
centres inside the boxes).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..data.entities import PHRASE_TYPES
from ..utils.markdown import markdown_table

MODES = (("reference", "reference captions (teacher-forced)"), ("generated", "generated captions"))


def _f(v: Optional[float], spec: str = "{:.3f}") -> str:
    return "n/a" if v is None else spec.format(v)


def _ratio(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _mode_line(block: dict[str, Any]) -> str:
    return (f"attention correctness {_f(block['correctness'])} (uniform {_f(block['uniform_correctness'])}, "
            f"{_ratio(block['correctness_ratio'])}), pointing {_f(block['hit_rate'])} "
            f"(chance {_f(block['chance_hit_rate'])}, {_ratio(block['hit_ratio'])})")


def _header(eg: dict[str, Any]) -> str:
    return (f"{eg['annotated_images']}/{eg['images']} images annotated, {eg['aligned_captions']}/{eg['captions']} "
            f"captions aligned; maps scored: {eg['attention']}")


def entities_lines(eg: dict[str, Any]) -> str:
    """The console lines ('' without an Entities grounding)."""
    if not eg:
        return ""
    ref, gen = eg["reference"], eg["generated"]
    return "\n".join([
        f"real-photo grounding (Flickr30k Entities; {_header(eg)}):",
        f"  reference captions, teacher-forced: {_mode_line(ref)}, {ref['n']} boxed phrases",
        f"  generated captions ({eg['decoding']}): {_mode_line(gen)}, {gen['scored_words']} of "
        f"{gen['object_words']} generated object words scored"])


def entities_markdown(eg: dict[str, Any]) -> list[str]:
    """The report.md section: both modes overall, then per phrase type."""
    head = ["", "phrases", "attention correctness", "uniform", "ratio", "pointing", "chance", "ratio"]
    rows = []
    for key, title in MODES:
        b = eg[key]
        rows.append([title, str(b["n"]), _f(b["correctness"]), _f(b["uniform_correctness"]),
                     _ratio(b["correctness_ratio"]), _f(b["hit_rate"]), _f(b["chance_hit_rate"]),
                     _ratio(b["hit_ratio"])])
    per_type_head = ["type"] + [f"{m}: {c}" for m, _ in MODES for c in ("n", "correctness", "uniform", "pointing",
                                                                         "chance")]
    per_type = []
    for t in PHRASE_TYPES:
        cells = [t]
        for key, _ in MODES:
            b = eg[key]["per_type"][t]
            cells += [str(b["n"]), _f(b["correctness"]), _f(b["uniform_correctness"]), _f(b["hit_rate"]),
                      _f(b["chance_hit_rate"])]
        per_type.append(cells)
    p, gen = eg["phrases"], eg["generated"]
    return ["## Attention on real photos (Flickr30k Entities boxes)", "",
            f"{_header(eg)}; {eg['grid_size']}x{eg['grid_size']} grid on the {eg['image_size']} px input. "
            "Attention correctness (Liu et al., 2017): for each word of a boxed phrase, the map upsampled to the "
            "input and renormalised, the mass inside the union of the phrase's boxes; the phrase takes the "
            "maximum over its words (uniform attention: the boxes' share of the input). Pointing: the peak "
            "cell's centre of the head word lies in a box (chance: the share of cell centres inside).", "",
            markdown_table(head, rows, ["left"] + ["right"] * 7), "",
            f"Reference phrases: {p['in_aligned_captions']} in the aligned captions, {p['scorable']} boxed "
            f"(not scene, no-box or notvisual), {p['cut_off_by_crop']} outside the crop, "
            f"{p['not_reached_by_tokens']} not found in the tokens; {p['scored']} scored. Generated "
            f"({eg['decoding']}): {gen['scored_words']} of {gen['object_words']} generated object words (head nouns "
            f"of boxed phrases anywhere in the evaluated images) name a boxed phrase of their own image and were "
            f"scored, of {gen['generated_words']} generated words; {gen.get('n_ambiguous', 0)} matched several "
            "chains (the best counts).", "",
            markdown_table(per_type_head, per_type, ["left"] + ["right"] * 10), ""]


def entities_results_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``show-attend results --grounding`` on evaluations with Flickr30k Entities grounding: one row per
    evaluation (both modes, with baselines, and CIDEr), then reference-caption correctness per type."""
    head = ["configuration", "grid", "input", "maps", "decoding", "split", "ref. correctness", "uniform", "ratio",
            "ref. pointing", "chance", "gen. correctness", "uniform", "gen. pointing", "chance", "gen. words scored",
            "CIDEr"]
    table, per_type = [], []
    for r in rows:
        eg = r.get("entities_grounding") or {}
        if not eg:
            raise ValueError(f"{r['source']} has no Flickr30k Entities grounding (evaluate with data.entities_dir)")
        ref, gen = eg["reference"], eg["generated"]
        s = r.get("settings") or {}
        table.append([r["label"], f"{r['grid']}x{r['grid']}", f"{s.get('image_size')} px", eg["attention"],
                      eg["decoding"], f"{r['split']} ({r['images']})", _f(ref["correctness"]),
                      _f(ref["uniform_correctness"]), _ratio(ref["correctness_ratio"]), _f(ref["hit_rate"]),
                      _f(ref["chance_hit_rate"]), _f(gen["correctness"]), _f(gen["uniform_correctness"]),
                      _f(gen["hit_rate"]), _f(gen["chance_hit_rate"]),
                      f"{gen['scored_words']}/{gen['object_words']}",
                      f"{100 * r['scores']['CIDEr']:.1f}" if "CIDEr" in r["scores"] else "n/a"])
        per_type.append([r["label"]] + [
            f"{_f(b['correctness'])} / {_f(b['uniform_correctness'])} ({b['n']})"
            for b in (ref["per_type"][t] for t in PHRASE_TYPES)])
    return "\n".join([
        markdown_table(head, table, ["left"] * 6 + ["right"] * 11), "",
        "Reference captions, attention correctness / uniform (phrases) per phrase type:", "",
        markdown_table(["configuration", *PHRASE_TYPES], per_type, ["left"] + ["right"] * len(PHRASE_TYPES))])
