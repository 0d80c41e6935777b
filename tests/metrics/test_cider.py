"""The fixed-IDF CIDEr-D reward agrees with pycocoevalcap's CIDEr-D when built on the same references."""
import random

import pytest
from pycocoevalcap.cider.cider import Cider

from show_attend.metrics.cider import CiderD, ngram_counts

WORDS = "a the dog dogs man woman runs run on in grass field red ball blue shirt is are two playing".split()


def _caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


def test_ngram_counts():
    counts = ngram_counts("a dog a dog", 2)
    assert counts[("a",)] == 2 and counts[("a", "dog")] == 2 and counts[("dog", "a")] == 1
    assert len(counts) == 2 + 2


def test_matches_pycocoevalcap_per_image():
    rng = random.Random(0)
    refs = {i: [_caption(rng) for _ in range(rng.randint(1, 5))] for i in range(40)}
    hyps = {i: [_caption(rng)] for i in refs}
    hyps[3] = [refs[3][0]]  # an exact match
    hyps[4] = ["zebra"]  # nothing in common with any reference
    mean, per_image = Cider().compute_score(refs, hyps)
    cider = CiderD(refs)
    ours = [cider.score(hyps[i][0], i) for i in refs]
    assert ours == pytest.approx(list(per_image), rel=1e-9, abs=1e-12)
    assert sum(ours) / len(ours) == pytest.approx(mean, rel=1e-9)
    assert ours[4] == 0.0 and ours[3] > max(ours[i] for i in refs if i not in (3,)) * 0.5


def test_idf_is_fixed_by_the_corpus_not_by_the_batch():
    refs = {0: ["a dog runs on the grass"], 1: ["a man in a red shirt"], 2: ["two dogs play"]}
    cider = CiderD(refs)
    alone = cider.score("a dog runs", 0)
    assert cider.score_many(["a dog runs", "a man"], [0, 1])[0] == alone
    with pytest.raises(ValueError):
        CiderD({})
