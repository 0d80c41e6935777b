"""Grounding score on hand-made attention sequences with hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from show_attend.evaluation.grounding import grounding_score, match_words, noun_phrases, score_sample

G = 7
SIZE = 70  # 10 px per cell


def _one_hot_steps(cells: list[tuple[int, int] | None]) -> np.ndarray:
    """(T, 49): step t all on cell (r, c); None = uniform."""
    a = np.zeros((len(cells), G * G))
    for t, cell in enumerate(cells):
        if cell is None:
            a[t] = 1.0 / (G * G)
        else:
            a[t, cell[0] * G + cell[1]] = 1.0
    return a


def _obj(color, shape, size, box):
    return {"color": color, "shape": shape, "size": size, "box": box}


def test_hand_computed_two_objects_four_words():
    objects = [_obj("red", "circle", "small", [0, 0, 20, 25]),
               _obj("blue", "square", "large", [40, 40, 70, 70])]
    tokens = "a red circle and a blue square".split()
    # red -> cell (0,0), circle -> (1,1), blue -> (3,3) (a miss: centre (35,35)), square -> (5,5)
    alphas = _one_hot_steps([None, (0, 0), (1, 1), None, None, (3, 3), (5, 5), None])  # + <end>
    out = grounding_score([(tokens, alphas, objects)], grid_size=G, image_size=SIZE)
    assert out["n_words"] == 4 and out["n_unmatched"] == 0 and out["n_ambiguous"] == 0
    assert out["n_samples"] == 1
    assert out["hit_rate"] == pytest.approx(3 / 4)
    # Bilinear mass per axis (cell profiles sum to 10 px): cell 0 lies wholly in [0, 20) and [0, 25);
    # cell 1 puts 8.75 of 10 in [0, 20) and all in [0, 25); cell 3 puts 1.25 of 10 in [40, 70);
    # cell 5 lies wholly in [40, 70).
    masses = [1.0, 0.875 * 1.0, 0.125 * 0.125, 1.0]
    assert out["mass_in_box"] == pytest.approx(np.mean(masses))
    # chance: cell centres (5, 15, ...) in the red box 2x2 of 49, in the blue box 3x3 of 49
    assert out["uniform_hit_rate"] == pytest.approx((4 + 4 + 9 + 9) / 49 / 4)
    assert out["uniform_mass"] == pytest.approx((500 + 500 + 900 + 900) / 4900 / 4)
    assert out["hit_rate_ratio"] == pytest.approx(0.75 / ((4 + 4 + 9 + 9) / 49 / 4))
    assert out["mass_ratio"] == pytest.approx(np.mean(masses) / (1 / 7))
    # near: the peak cell shares pixels with the box. (3,3) spans [30, 40) and misses [40, 70) too;
    # cells overlapping the red box: columns 0-1 x rows 0-2 = 6, the blue box: 3x3 = 9.
    assert out["near_rate"] == pytest.approx(3 / 4)
    assert out["uniform_near_rate"] == pytest.approx((6 + 6 + 9 + 9) / 49 / 4)
    # offsets of the peak cell centres from the box centres (10, 12.5) and (55, 55), in cells:
    # (-0.5, -0.75), (0.5, 0.25), (-2, -2), (0, 0)
    assert out["mean_peak_offset"] == pytest.approx([-0.5, -0.625])
    color, shape = out["per_kind"]["color"], out["per_kind"]["shape"]
    assert color["n_words"] == 2 and color["hit_rate"] == pytest.approx(0.5)
    assert color["mass_in_box"] == pytest.approx((1.0 + 0.015625) / 2)
    assert shape["hit_rate"] == pytest.approx(1.0) and shape["mass_in_box"] == pytest.approx(0.9375)


def test_uniform_attention_scores_the_baseline():
    objects = [_obj("red", "circle", "small", [0, 0, 20, 20])]
    tokens = ["red", "circle"]
    out = grounding_score([{"tokens": tokens, "alphas": _one_hot_steps([None, None]),
                            "objects": objects}], G, SIZE)
    assert out["mass_in_box"] == pytest.approx(out["uniform_mass"]) == pytest.approx(400 / 4900)


def test_noun_phrases_and_disambiguation():
    tokens = "a large red circle to the left of a small blue square".split()
    assert noun_phrases(tokens) == [[1, 2, 3], [9, 10, 11]]
    objects = [_obj("red", "circle", "large", [0, 0, 30, 30]),
               _obj("red", "square", "small", [40, 0, 60, 20]),
               _obj("blue", "circle", "small", [0, 40, 20, 60])]
    # "red circle": red -> only the red circle (not the red square); "circle" likewise
    assert match_words("a red circle".split(), objects) == [None, [0], [0]]
    # "red" alone is ambiguous; "circle" alone too
    assert match_words("something red".split(), objects) == [None, [0, 1]]
    # size words (and their synonyms) disambiguate as well
    objs2 = [_obj("red", "circle", "large", [0, 0, 30, 30]), _obj("red", "circle", "small", [40, 40, 60, 60])]
    assert match_words("a little red circle".split(), objs2) == [None, [1], [1], [1]]
    # a phrase no object fits as a whole: each word falls back to its own attribute
    assert match_words("a blue square".split(), objects) == [None, [2], [1]]
    # hallucinated words name nothing
    assert match_words("a green triangle".split(), objects) == [None, [], []]


def test_ambiguous_word_hits_any_candidate_with_max_mass():
    objects = [_obj("red", "circle", "small", [0, 0, 20, 20]),
               _obj("red", "circle", "small", [50, 50, 70, 70])]
    tokens = ["a", "red", "circle"]
    alphas = _one_hot_steps([None, (6, 6), (6, 6)])  # cell (6,6) centre (65,65): the second circle
    out = grounding_score([(tokens, alphas, objects)], G, SIZE)
    assert out["n_words"] == 2 and out["n_ambiguous"] == 2
    assert out["hit_rate"] == 1.0
    assert out["mass_in_box"] == pytest.approx(1.0)  # the edge cell's mass lies inside [50, 70)^2
    # chance of a hit: cell centres in the union (4 + 4 of 49); uniform mass: the larger share
    assert out["uniform_hit_rate"] == pytest.approx(8 / 49)
    assert out["uniform_mass"] == pytest.approx(400 / 4900)
    # the offset is taken from the nearest candidate: (65, 65) - (60, 60) = half a cell each way
    assert out["near_rate"] == 1.0 and out["mean_peak_offset"] == pytest.approx([0.5, 0.5])


def test_near_miss_is_near_but_not_a_hit():
    objects = [_obj("red", "circle", "small", [12, 12, 32, 32])]  # overlaps cells 1-3, centre (22, 22)
    # "red" peaks on cell (3,3) = [30, 40)^2: overlaps the box, but its centre (35, 35) is outside;
    # "circle" on cell (0,2): row 0 = [0, 10) does not reach the box.
    alphas = _one_hot_steps([(3, 3), (0, 2)])
    out = grounding_score([(["red", "circle"], alphas, objects)], G, SIZE)
    assert out["hit_rate"] == 0.0 and out["near_rate"] == pytest.approx(0.5)
    assert out["uniform_near_rate"] == pytest.approx(9 / 49)  # rows 1-3 x columns 1-3
    # (35, 35) - (22, 22) = (1.3, 1.3) cells; (25, 5) - (22, 22) = (0.3, -1.7)
    assert out["mean_peak_offset"] == pytest.approx([0.8, -0.2])


def test_unmatched_words_are_counted_separately():
    objects = [_obj("red", "circle", "small", [0, 0, 20, 20])]
    tokens = "a red circle and a green triangle".split()
    alphas = _one_hot_steps([None, (0, 0), (0, 0), None, None, (6, 6), (6, 6)])
    out = grounding_score([(tokens, alphas, objects)], G, SIZE)
    assert out["n_words"] == 2 and out["n_unmatched"] == 2
    assert out["hit_rate"] == 1.0  # hallucinations do not enter the rates
    assert out["per_kind"]["color"]["n_unmatched"] == 1 and out["per_kind"]["shape"]["n_unmatched"] == 1


def test_size_words_only_when_asked_and_empty_cases():
    objects = [_obj("red", "circle", "large", [0, 0, 40, 40])]
    tokens = ["a", "big", "red", "circle"]
    alphas = _one_hot_steps([None, (0, 0), (0, 0), (0, 0)])
    assert grounding_score([(tokens, alphas, objects)], G, SIZE)["n_words"] == 2
    out = grounding_score([(tokens, alphas, objects)], G, SIZE, kinds=("color", "shape", "size"))
    assert out["n_words"] == 3 and out["per_kind"]["size"]["hit_rate"] == 1.0
    empty = grounding_score([(["a", "dog"], _one_hot_steps([None, None]), objects)], G, SIZE)
    assert empty["n_words"] == 0 and empty["hit_rate"] is None and empty["hit_rate_ratio"] is None


def test_14x14_grid_and_input_checks():
    objects = [_obj("red", "circle", "small", [0, 0, 20, 20])]
    a = np.zeros((2, 14 * 14))
    a[:, 0] = 1.0  # cell (0,0) of a 14x14 grid on a 70 px image: centre (2.5, 2.5)
    scores, unmatched = score_sample(["red", "circle"], a, objects, 14, SIZE)
    assert [s.hit for s in scores] == [True, True] and unmatched == []
    with pytest.raises(ValueError):
        score_sample(["red", "circle"], a, objects, 7, SIZE)  # wrong grid size
    with pytest.raises(ValueError):
        score_sample(["red", "circle"], a[:1], objects, 14, SIZE)  # fewer steps than tokens
