"""tools/evaluate.py's engine: files in COCO format, metrics equal to pycocoevalcap on those files."""
import json
import shutil

import pytest

from show_attend.metrics.coco_format import read_annotations, read_results, score_files
from show_attend.evaluation.evaluate import evaluate_checkpoint


def test_evaluate_writes_coco_files_and_matching_metrics(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "eval"
    report = evaluate_checkpoint(run_dir / "best.pt", split="test", out_dir=out, beam_size=3,
                                 tokenizer="python", progress=False)
    for name in ("results.json", "annotations.json", "metrics.json", "report.md", "samples.txt"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 6 and set(results[0]) == {"image_id", "caption"}
    annotations = json.loads((out / "annotations.json").read_text())
    assert {"images", "annotations", "type"} <= set(annotations)
    assert len(annotations["annotations"]) == 6 * 5
    metrics = json.loads((out / "metrics.json").read_text())
    settings = metrics["settings"]
    assert settings["beam_size"] == 3 and settings["split"] == "test" and settings["grid_size"] == 7
    assert settings["tokenizer"] == "python" and "torch" in settings["versions"]
    assert set(metrics["metrics"]) >= {"Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr"}
    # the stored metrics equal an independent scoring of the written files
    again = score_files(out / "results.json", out / "annotations.json", tokenizer="python",
                        metrics=("Bleu", "ROUGE_L", "CIDEr"))
    for name, value in again.scores.items():
        assert metrics["metrics"][name] == pytest.approx(value, abs=1e-4), name
    assert "grounding" in metrics  # synthetic data knows its boxes
    text = (out / "report.md").read_text()
    assert "Best" in text and "Worst" in text and "x100" in text
    assert len(read_results(out / "results.json")) == len(read_annotations(out / "annotations.json"))
    assert report.scores == metrics["metrics"]


@pytest.mark.skipif(shutil.which("java") is None, reason="Java not installed")
def test_metrics_match_pycocoevalcap_scorers_with_java(trained_run, tmp_path):
    """The full path (Java PTBTokenizer + METEOR) against pycocoevalcap's own classes."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    run_dir, _ = trained_run
    out = tmp_path / "eval"
    report = evaluate_checkpoint(run_dir / "best.pt", split="val", out_dir=out, beam_size=2, progress=False)
    assert report.settings["tokenizer"] == "ptb-java"
    results = json.loads((out / "results.json").read_text())
    annotations = json.loads((out / "annotations.json").read_text())
    gts = {}
    for a in annotations["annotations"]:
        gts.setdefault(a["image_id"], []).append({"caption": a["caption"]})
    res = {r["image_id"]: [{"caption": r["caption"]}] for r in results}
    try:  # PTBTokenizer writes into site-packages; copy it if that is read-only
        tok = PTBTokenizer()
        gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    except OSError as exc:  # pragma: no cover
        pytest.skip(f"pycocoevalcap's PTBTokenizer cannot run here: {exc}")
    bleu, _ = Bleu(4).compute_score(gts_t, res_t)
    expected = {f"Bleu_{i + 1}": b for i, b in enumerate(bleu)}
    expected["ROUGE_L"] = Rouge().compute_score(gts_t, res_t)[0]
    expected["CIDEr"] = Cider().compute_score(gts_t, res_t)[0]
    for name, value in expected.items():
        assert report.scores[name] == pytest.approx(value, abs=1e-4), name
    assert "METEOR" in report.scores


def test_evaluate_without_java_skips_meteor(trained_run, tmp_path, monkeypatch):
    run_dir, _ = trained_run
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.warns(RuntimeWarning, match="METEOR skipped"):
        report = evaluate_checkpoint(run_dir / "best.pt", split="test", out_dir=tmp_path / "e", beam_size=1,
                                     progress=False)
    assert report.settings["tokenizer"] == "python"
    assert "METEOR" in report.settings["skipped_metrics"]
    assert {"Bleu_4", "ROUGE_L", "CIDEr"} <= set(report.scores)
    assert "METEOR" in (tmp_path / "e" / "report.md").read_text()  # says what it skipped
