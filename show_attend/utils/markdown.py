"""Markdown tables: the one place the package writes them (reports, results tables, metrics)."""
from __future__ import annotations

from typing import Any, Optional, Sequence


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]],
                   align: Optional[Sequence[str]] = None) -> str:
    """``| a | b |`` lines: the header, the rule and one line per row.

    ``align`` holds one of ``"left"`` (``---``), ``"right"`` (``---:``) per column (default: left).
    """
    align = list(align) if align is not None else ["left"] * len(header)
    if len(align) != len(header):
        raise ValueError(f"{len(align)} alignments for {len(header)} columns")
    rules = {"left": "---", "right": "---:", "center": ":---:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(rules[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row of {len(row)} cells under {len(header)} columns")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
