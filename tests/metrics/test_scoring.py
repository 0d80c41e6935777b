"""score_captions agrees with pycocoevalcap's own scorers and survives its known traps."""
from __future__ import annotations

import os
import random
import shutil
import stat
import time

import pytest

from show_attend.metrics import MeteorScorer, MetricsError, ScoreReport, java_executable, score_captions, scoring
from show_attend.metrics.java import pycocoevalcap_dir, tokenize_ptb_java
from show_attend.metrics.spice import spice_unavailable_reason

JAVA = java_executable()
needs_java = pytest.mark.skipif(JAVA is None, reason="java not on PATH")

_SUBJ = ["A brown dog", "Two children", "A man in a red shirt", "A woman", "A black cat",
         "Three people", "A little girl", "A skier", "A surfer", "A group of friends"]
_VERB = ["runs across", "is sitting on", "plays in", "walks along", "jumps over", "stands near",
         "is lying on", "rides through"]
_PLACE = ["the green grass", "a sandy beach", "the snowy hill", "a busy street", "a wooden bench",
          "the blue water", "a dirt road", "the kitchen table"]
_TAIL = ["", ".", " .", " on a sunny day.", ", smiling.", " (near a tree).", " in the U.S.",
         "'s edge.", " -- quickly!"]


def make_data(n_images: int = 20, n_refs: int = 5, seed: int = 0):
    """Real-ish references and hypotheses: some perfect, some bad, one empty, str ids."""
    rng = random.Random(seed)
    refs, res = {}, {}
    for i in range(n_images):
        subj, verb, place = rng.choice(_SUBJ), rng.choice(_VERB), rng.choice(_PLACE)
        caps = []
        for _ in range(n_refs):
            s = subj if rng.random() < 0.7 else rng.choice(_SUBJ)
            v = verb if rng.random() < 0.6 else rng.choice(_VERB)
            p = place if rng.random() < 0.6 else rng.choice(_PLACE)
            caps.append(f"{s} {v} {p}{rng.choice(_TAIL)}")
        image_id = f"{1000268201 + 7919 * i}_{i:04x}"
        refs[image_id] = caps
        kind = i % 5
        if kind == 0:
            res[image_id] = caps[0]                          # perfect
        elif kind == 1:
            res[image_id] = f"{subj.lower()} {verb} {place}"  # good
        elif kind == 2:
            res[image_id] = "a plate of food on a table ."   # bad
        else:
            res[image_id] = f"{rng.choice(_SUBJ)} {rng.choice(_VERB)}"
    res[next(iter(res))] = ""                                # one empty hypothesis
    return res, refs


@pytest.fixture(scope="module")
def meteors():
    """Our METEOR JVM and pycocoevalcap's, started together once (start-up takes ~15 s)."""
    if JAVA is None:
        pytest.skip("java not on PATH")
    from pycocoevalcap.meteor.meteor import Meteor

    ours = MeteorScorer(java=JAVA).start()
    theirs = Meteor()
    yield ours, theirs
    ours.close()
    theirs.meteor_p.kill()
    theirs.meteor_p.wait()


def _pycocoevalcap_direct(res, refs, meteor):
    """pycocoevalcap's tokenizer and scorers called directly (what COCOEvalCap does)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts_in = {k: [{"caption": c} for c in refs[k]] for k in res}
    res_in = {k: [{"caption": res[k]}] for k in res}
    if os.access(pycocoevalcap_dir() / "tokenizer", os.W_OK):
        tok = PTBTokenizer()
        gts, rs = tok.tokenize(gts_in), tok.tokenize(res_in)
    else:  # read-only site-packages: the identical command, run from a temporary directory
        flat = tokenize_ptb_java([c for k in res for c in refs[k]], java=JAVA)
        gts, pos = {}, 0
        for k in res:
            gts[k], pos = flat[pos:pos + len(refs[k])], pos + len(refs[k])
        rs = {k: [t] for k, t in zip(res, tokenize_ptb_java(list(res.values()), java=JAVA))}
    out, per = {}, {}
    score, scores = Bleu(4).compute_score(gts, rs, verbose=0)
    for n in range(4):
        out[f"Bleu_{n + 1}"], per[f"Bleu_{n + 1}"] = score[n], scores[n]
    out["METEOR"], per["METEOR"] = meteor.compute_score(gts, rs)
    out["ROUGE_L"], per["ROUGE_L"] = Rouge().compute_score(gts, rs)
    out["CIDEr"], per["CIDEr"] = Cider().compute_score(gts, rs)
    return out, per


@needs_java
def test_agrees_with_pycocoevalcap(meteors):
    ours_meteor, their_meteor = meteors
    res, refs = make_data()
    report = score_captions(res, refs, tokenizer="ptb", meteor_scorer=ours_meteor,
                            metrics=("Bleu", "METEOR", "ROUGE_L", "CIDEr"))
    assert report.tokenizer == "ptb-java"
    assert report.skipped == {}
    expected, per = _pycocoevalcap_direct(res, refs, their_meteor)
    assert set(report.scores) == set(expected)
    for name, value in expected.items():
        assert report.scores[name] == pytest.approx(float(value), abs=1e-6), name
        got = [report.per_image[name][k] for k in res]
        assert got == pytest.approx([float(v) for v in per[name]], abs=1e-6), name
    # sanity: perfect hypotheses score high, the empty one scores zero
    first = next(iter(res))
    assert report.per_image["CIDEr"][first] == 0.0
    assert report.per_image["Bleu_4"][first] < 1e-6
    assert report.per_image["METEOR"][first] == 0.0
    perfect = list(res)[5]
    assert report.per_image["Bleu_1"][perfect] > 0.99
    assert 0 < report.scores["CIDEr"] < 10 and 0 < report.scores["Bleu_4"] < 1


@needs_java
def test_python_tokenizer_gives_the_same_scores():
    res, refs = make_data(seed=1)
    metrics = ("Bleu", "ROUGE_L", "CIDEr")
    java = score_captions(res, refs, tokenizer="ptb", metrics=metrics)
    py = score_captions(res, refs, tokenizer="python", metrics=metrics)
    assert py.tokenizer == "python" and java.tokenizer == "ptb-java"
    assert py.scores == java.scores


def test_without_java_scores_bleu_rouge_cider_and_skips_meteor(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if name == "java" else real_which(name, *a, **k))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java_executable() is None
    res, refs = make_data()
    with pytest.warns(RuntimeWarning) as record:
        report = score_captions(res, refs)  # default metrics, tokenizer="auto"
    messages = " | ".join(str(w.message) for w in record)
    assert "METEOR skipped" in messages and "pure-Python" in messages
    assert report.tokenizer == "python"
    assert set(report.scores) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"}
    assert set(report.skipped) == {"METEOR", "SPICE"}
    assert "java" in report.skipped["METEOR"]
    assert any("Python" in note or "python" in note for note in report.notes)
    assert set(report.per_image["CIDEr"]) == set(res)
    with pytest.raises(MetricsError):
        score_captions(res, refs, tokenizer="ptb", metrics=("Bleu",))


@pytest.mark.parametrize("tokenizer", ["python", "ptb"])
def test_line_separators_do_not_shift_captions(tokenizer):
    if tokenizer == "ptb" and JAVA is None:
        pytest.skip("java not on PATH")
    res, refs = make_data(seed=2)
    dirty_refs = {k: list(v) for k, v in refs.items()}
    dirty_res = dict(res)
    keys = list(res)
    separators = ["\r", "\x0c", "\u2028", "\u2029", "\x0b", "\x85", "\r\n", "\n"]
    for j, sep in enumerate(separators):
        k = keys[(2 * j + 1) % len(keys)]
        dirty_refs[k][j % 5] = dirty_refs[k][j % 5].replace(" ", sep, 2)
        k2 = keys[(2 * j + 2) % len(keys)]
        dirty_res[k2] = dirty_res[k2].replace(" ", sep, 1)
    metrics = ("Bleu", "ROUGE_L", "CIDEr")
    clean = score_captions(res, refs, tokenizer=tokenizer, metrics=metrics)
    dirty = score_captions(dirty_res, dirty_refs, tokenizer=tokenizer, metrics=metrics)
    assert dirty.scores == pytest.approx(clean.scores, abs=1e-12)
    assert dirty.per_image["CIDEr"] == pytest.approx(clean.per_image["CIDEr"], abs=1e-12)


def test_cider_idf_uses_the_whole_split():
    res, refs = make_data(n_images=20, seed=3)
    whole = score_captions(res, refs, tokenizer="python", metrics=("CIDEr",))
    keys = list(res)
    halves = [score_captions({k: res[k] for k in part}, {k: refs[k] for k in part},
                             tokenizer="python", metrics=("CIDEr",))
              for part in (keys[:10], keys[10:])]
    per = whole.per_image["CIDEr"]
    assert whole.scores["CIDEr"] == pytest.approx(sum(per.values()) / len(per))
    # The IDF of a half differs from the split's, so per-image (and mean) scores change.
    diffs = [abs(half.per_image["CIDEr"][k] - per[k]) for half in halves for k in half.per_image["CIDEr"]]
    assert max(diffs) > 1e-3
    assert sum(h.scores["CIDEr"] for h in halves) / 2 != pytest.approx(whole.scores["CIDEr"], abs=1e-9)


def test_inputs_are_checked():
    res, refs = make_data(n_images=3)
    with pytest.raises(KeyError):
        score_captions({**res, "unknown": "a dog"}, refs, metrics=("Bleu",), tokenizer="python")
    with pytest.raises(ValueError):
        score_captions(res, refs, metrics=("BLEURT",), tokenizer="python")
    with pytest.raises(TypeError):
        score_captions({k: None for k in res}, refs, metrics=("Bleu",), tokenizer="python")
    with pytest.raises(ValueError):
        score_captions(res, refs, metrics=("Bleu",), tokenizer="spacy")
    extra = score_captions(res, {**refs, "more": ["x"]}, metrics=("Bleu",), tokenizer="python")
    assert any("ignored" in n for n in extra.notes)
    assert isinstance(extra, ScoreReport) and extra.n_images == 3
    d = extra.to_dict(include_per_image=True)
    assert d["tokenizer"] == "python" and set(d["per_image"]["Bleu_4"]) == set(res)


def test_int_image_ids_are_kept():
    res, refs = make_data(n_images=4)
    res_i = {n: res[k] for n, k in enumerate(res)}
    refs_i = {n: refs[k] for n, k in enumerate(res)}
    report = score_captions(res_i, refs_i, tokenizer="python", metrics=("Bleu", "CIDEr"))
    assert set(report.per_image["CIDEr"]) == {0, 1, 2, 3}


def test_spice_is_skipped_with_a_reason_when_corenlp_is_missing():
    reason = spice_unavailable_reason(JAVA)
    if JAVA is not None and reason is None:
        pytest.skip("SPICE is fully installed here")
    res, refs = make_data(n_images=3)
    with pytest.warns(RuntimeWarning, match="SPICE skipped"):
        report = score_captions(res, refs, tokenizer="python", metrics=("SPICE",))
    assert "SPICE" in report.skipped and report.scores == {}
    assert spice_unavailable_reason(None) == "java not found on PATH"


def _fake_java(tmp_path, body: str) -> str:
    """An executable standing in for java (ignores its arguments)."""
    path = tmp_path / "fakejava"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_meteor_hang_is_cut_by_the_timeout_and_the_jvm_is_stopped(tmp_path):
    java = _fake_java(tmp_path, "exec sleep 60")
    scorer = MeteorScorer(java=java, start_timeout=1.0, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(MetricsError, match="did not answer"):
        scorer.score({"a": ["a dog"]}, {"a": ["a dog"]})
    assert time.monotonic() - t0 < 10
    assert scorer._proc is None  # closed


def test_meteor_failed_start_and_garbage_are_errors(tmp_path):
    dead = MeteorScorer(java=_fake_java(tmp_path, "echo 'Error: no heap' >&2; exit 1"),
                        start_timeout=20.0, timeout=20.0)
    with pytest.raises(MetricsError, match="exited"):
        dead.score({"a": ["a dog"]}, {"a": ["a dog"]})
    chatty = MeteorScorer(java=_fake_java(tmp_path, "while read l; do echo nonsense; done"),
                          start_timeout=20.0, timeout=20.0)
    with pytest.raises(MetricsError, match="non-number"):
        chatty.score({"a": ["a dog"]}, {"a": ["a dog"]})


def test_meteor_failure_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setattr(scoring, "java_executable", lambda timeout=30.0: _fake_java(tmp_path, "exit 3"))
    res, refs = make_data(n_images=3)
    with pytest.warns(RuntimeWarning, match="METEOR skipped"):
        report = score_captions(res, refs, tokenizer="python", metrics=("Bleu", "METEOR"))
    assert "METEOR" in report.skipped and "Bleu_4" in report.scores


@needs_java
def test_meteor_input_is_cleaned(meteors):
    ours, their = meteors
    score_dirty, _ = ours.score({"x": ["a dog ||| runs\nin the park"], "y": ["a cat"]},
                                {"x": ["a dog\u2028runs |||"], "y": ["a cat\rsleeps"]})
    score_clean, _ = ours.score({"x": ["a dog  runs in the park"], "y": ["a cat"]},
                                {"x": ["a dog runs"], "y": ["a cat sleeps"]})
    assert score_dirty == pytest.approx(score_clean)
    assert ours._proc is not None and ours._proc.poll() is None  # still alive and in sync


def test_java_tokenizer_failure_raises(tmp_path):
    with pytest.raises(MetricsError):
        tokenize_ptb_java(["a dog"], java=_fake_java(tmp_path, "exit 1"))
    with pytest.raises(MetricsError, match="lines"):  # Java "succeeds" but prints nothing
        tokenize_ptb_java(["a dog", "a cat"], java=_fake_java(tmp_path, "exit 0"))
