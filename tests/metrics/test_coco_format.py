"""COCO-format results/annotation files: round trips, layout, and scoring from the files."""
from __future__ import annotations

import json

import pytest

from show_attend.metrics.coco_format import (metrics_table_markdown, read_annotations, read_image_names,
                                     read_results, score_files, write_annotations, write_results)
from show_attend.metrics import score_captions

REFS = {
    "1000268201_693b08cb0e": ["A child in a pink dress is climbing up a set of stairs.",
                              "A girl going into a wooden building .",
                              "A little girl climbing into a wooden playhouse ."],
    "1001773457_577c3a7d70": ["A black dog and a spotted dog are fighting",
                              "Two dogs on pavement moving toward each other ."],
    "1002674143_1b742ab4b8": ["A little girl covered in paint sits in front of a painted rainbow",
                              "There is a girl with pigtails sitting in front of a rainbow painting ."],
}
RESULTS = {"1000268201_693b08cb0e": "a little girl climbing into a wooden playhouse",
           "1001773457_577c3a7d70": "two dogs are fighting",
           "1002674143_1b742ab4b8": ""}


def test_results_round_trip_keeps_string_and_int_ids(tmp_path):
    write_results(tmp_path / "res.json", RESULTS)
    data = json.loads((tmp_path / "res.json").read_text())
    assert data == [{"image_id": k, "caption": v} for k, v in RESULTS.items()]
    assert read_results(tmp_path / "res.json") == RESULTS
    ints = {391895: "a man on a bike", 522418: "a woman cutting a cake"}
    write_results(tmp_path / "int.json", ints)
    back = read_results(tmp_path / "int.json")
    assert back == ints and all(isinstance(k, int) for k in back)


def test_annotations_layout_and_round_trip(tmp_path):
    names = {k: k + ".jpg" for k in REFS}
    write_annotations(tmp_path / "ann.json", REFS, image_names=names)
    data = json.loads((tmp_path / "ann.json").read_text())
    assert set(data) == {"info", "licenses", "type", "images", "annotations"}
    assert data["type"] == "captions" and data["licenses"] == []
    assert data["images"][0] == {"id": "1000268201_693b08cb0e",
                                 "file_name": "1000268201_693b08cb0e.jpg"}
    ann_ids = [a["id"] for a in data["annotations"]]
    assert ann_ids == list(range(1, 8)) and set(data["annotations"][0]) == {"image_id", "id",
                                                                            "caption"}
    assert read_annotations(tmp_path / "ann.json") == REFS
    assert read_image_names(tmp_path / "ann.json") == names
    write_annotations(tmp_path / "ann_int.json", {7: ["a cat"], 9: ["a dog", "two dogs"]})
    back = read_annotations(tmp_path / "ann_int.json")
    assert back == {7: ["a cat"], 9: ["a dog", "two dogs"]}
    assert read_image_names(tmp_path / "ann_int.json") == {7: "7", 9: "9"}


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError):
        write_results(tmp_path / "x.json", {(1, 2): "tuple id"})
    with pytest.raises(TypeError):
        write_annotations(tmp_path / "y.json", {1: "not a list"})
    (tmp_path / "dup.json").write_text(json.dumps([{"image_id": 1, "caption": "a"},
                                                   {"image_id": 1, "caption": "b"}]))
    with pytest.raises(ValueError):
        read_results(tmp_path / "dup.json")


def test_metrics_json_can_be_checked_against_the_files(tmp_path):
    metrics = ("Bleu", "ROUGE_L", "CIDEr")
    report = score_captions(RESULTS, REFS, metrics=metrics)
    write_results(tmp_path / "results.json", RESULTS)
    write_annotations(tmp_path / "annotations.json", REFS)
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": report.scores}))
    again = score_files(tmp_path / "results.json", tmp_path / "annotations.json",
                        metrics=metrics)
    stored = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert again.scores == pytest.approx(stored, abs=1e-12)
    assert again.tokenizer == report.tokenizer


def test_metrics_table_markdown():
    scores = {"Bleu_1": 0.6712, "Bleu_4": 0.19512, "METEOR": 0.1893, "CIDEr": 0.4901,
              "custom": 0.5}
    table = metrics_table_markdown(scores)
    assert "x100" in table
    lines = table.splitlines()
    assert lines[2] == "| BLEU-1 | BLEU-4 | METEOR | CIDEr | custom |"
    assert lines[4] == "| 67.12 | 19.51 | 18.93 | 49.01 | 50.00 |"
    raw = metrics_table_markdown(scores, scale100=False, title="Flickr8k test")
    assert raw.startswith("Flickr8k test (scores on the 0-1 scale)")
    assert "0.6712" in raw and "x100" not in raw
    assert metrics_table_markdown({}) == "(no scores)"
