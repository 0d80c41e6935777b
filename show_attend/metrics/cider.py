"""CIDEr-D with a fixed document-frequency table: the reward of self-critical training.

pycocoevalcap's ``Cider`` takes its IDF from the references of the images it is scoring, which is
right for evaluating a split once, and wrong for a reward: scored batch by batch, the same caption
would earn a different reward in every batch. :class:`CiderD` computes the document frequencies
once, over a whole corpus of references (the training split, as in Rennie et al. 2017), and then
scores any caption against any image's references with exactly pycocoevalcap's CIDEr-D formula:

    g^n(s)      tf-idf vector of the n-grams of s:  tf(w) * (log |corpus| - log max(1, df(w)))
    CIDEr-D_n   10/m sum_j  sum_w min(g^n_w(c), g^n_w(s_j)) g^n_w(s_j) / (|g^n(c)| |g^n(s_j)|)
                            * exp(-(l(c) - l(s_j))^2 / (2 sigma^2))
    CIDEr-D     mean over n = 1..4

with m references s_j, sigma = 6, and (as pycocoevalcap counts it) l(.) the number of *bigrams*.
Built on the references of a split, it gives pycocoevalcap's per-image scores for that split (tested).
Captions are token strings (space-separated, already tokenised and lower-cased).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Iterable, Mapping, Sequence

NGram = tuple[str, ...]


def ngram_counts(caption: str, n: int = 4) -> Counter:
    """Counts of every 1..n-gram of a space-separated token string."""
    words = caption.split()
    counts: Counter = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i: i + k])] += 1
    return counts


class _Vector:
    """The tf-idf vectors of one caption, split by n-gram order, with their norms and length."""

    __slots__ = ("weights", "norms", "length")

    def __init__(self, counts: Counter, idf: Mapping[NGram, float], log_corpus: float, n: int):
        self.weights: list[dict[NGram, float]] = [{} for _ in range(n)]
        squares = [0.0] * n
        self.length = 0
        for gram, tf in counts.items():
            order = len(gram) - 1
            w = tf * (log_corpus - idf.get(gram, 0.0))
            self.weights[order][gram] = w
            squares[order] += w * w
            if order == 1:  # pycocoevalcap's length: the number of bigrams
                self.length += tf
        self.norms = [math.sqrt(s) for s in squares]


class CiderD:
    """CIDEr-D against a fixed corpus of references.

    Args:
        references: image id -> tokenised reference captions (space-separated strings). These
            define the document frequencies (one document per image) and are the references
            :meth:`score` compares against.
        n: largest n-gram order (4). sigma: width of the length penalty (6).
    """

    def __init__(self, references: Mapping[Hashable, Sequence[str]], n: int = 4, sigma: float = 6.0):
        if not references:
            raise ValueError("CiderD needs at least one image's references")
        self.n = n
        self.sigma = sigma
        df: Counter = Counter()
        ref_counts = {}
        for image_id, refs in references.items():
            counts = [ngram_counts(r, n) for r in refs]
            ref_counts[image_id] = counts
            df.update({g for c in counts for g in c})
        self.log_corpus = math.log(float(len(references)))
        # log max(1, df): n-grams never seen in the references have df 0 -> log 1 = 0
        self.log_df = {g: math.log(max(1.0, float(c))) for g, c in df.items()}
        self._refs = {image_id: [self._vector(c) for c in counts] for image_id, counts in ref_counts.items()}

    def _vector(self, counts: Counter) -> _Vector:
        return _Vector(counts, self.log_df, self.log_corpus, self.n)

    def _similarity(self, hyp: _Vector, ref: _Vector) -> float:
        """Mean over n-gram orders of the clipped cosine similarity, with the length penalty."""
        penalty = math.exp(-((hyp.length - ref.length) ** 2) / (2 * self.sigma ** 2))
        total = 0.0
        for order in range(self.n):
            ref_w = ref.weights[order]
            dot = sum(min(w, ref_w.get(g, 0.0)) * ref_w.get(g, 0.0) for g, w in hyp.weights[order].items())
            if hyp.norms[order] != 0 and ref.norms[order] != 0:
                dot /= hyp.norms[order] * ref.norms[order]
            total += dot * penalty
        return total / self.n

    def score(self, caption: str, image_id: Hashable) -> float:
        """CIDEr-D of one caption (token string) against the references of ``image_id``."""
        refs = self._refs[image_id]
        hyp = self._vector(ngram_counts(caption, self.n))
        return 10.0 * sum(self._similarity(hyp, ref) for ref in refs) / len(refs)

    def score_many(self, captions: Iterable[str], image_ids: Iterable[Hashable]) -> list[float]:
        """:meth:`score` for aligned sequences of captions and image ids."""
        return [self.score(c, i) for c, i in zip(captions, image_ids)]

