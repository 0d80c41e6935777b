"""Word <-> index mapping, built from the TRAIN split only, saved as JSON."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..utils.files import atomic_write_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)


class Vocabulary:
    """Index 0 is ``<pad>``, then ``<start>``, ``<end>``, ``<unk>``, then words by frequency."""

    def __init__(self, words: Sequence[str], counts: dict[str, int] | None = None):
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.counts = dict(counts or {})

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, tokenized_captions: Iterable[Sequence[str]], min_count: int = 5) -> "Vocabulary":
        """Keep words seen at least ``min_count`` times (ties broken alphabetically)."""
        counter: Counter[str] = Counter()
        for tokens in tokenized_captions:
            counter.update(tokens)
        kept = sorted((w for w, c in counter.items() if c >= min_count),
                      key=lambda w: (-counter[w], w))
        return cls(kept, {w: counter[w] for w in kept})

    # ------------------------------------------------------------------ indices
    pad_id = property(lambda self: self.stoi[PAD])
    start_id = property(lambda self: self.stoi[START])
    end_id = property(lambda self: self.stoi[END])
    unk_id = property(lambda self: self.stoi[UNK])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, tokens: Sequence[str], max_length: int | None = None) -> list[int]:
        """``<start> w1 .. wn <end>`` as ids; words beyond ``max_length`` are dropped."""
        if max_length is not None:
            tokens = tokens[:max_length]
        unk = self.unk_id
        return [self.start_id] + [self.stoi.get(t, unk) for t in tokens] + [self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first ``<end>``, skipping ``<start>`` and ``<pad>``."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.start_id, self.pad_id):
                continue
            words.append(self.itos[i])
        return words

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"itos": self.itos, "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        itos = data["itos"]
        if list(itos[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {itos[:4]}")
        return cls(itos[len(SPECIALS):], data.get("counts"))

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        return cls.from_dict(json.loads(Path(path).read_text()))
