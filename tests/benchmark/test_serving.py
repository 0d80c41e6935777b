"""The serving benchmark starts show-attend serve as its own process, loads it at each concurrency
level, and reports rates, latencies and the batches the server formed (tiny sizes; timings not asserted)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
pytest.importorskip("uvicorn", reason="serving needs the [serve] extra")


def test_quick_serving_benchmark_runs_and_reports(trained_run, tmp_path, capsys):
    from show_attend.cli import benchmark_main

    run_dir, _ = trained_run
    out = tmp_path / "serving.json"
    assert benchmark_main(["--serving", str(run_dir), "--quick", "--clients", "1", "3", "--device", "cpu",
                           "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| concurrent clients |" in printed and "model tiny, beam 3" in printed
    result = json.loads(out.read_text())
    levels = result["levels"]
    assert [lv["clients"] for lv in levels] == [1, 3] and [lv["requests"] for lv in levels] == [4, 12]
    assert all(lv["ok"] == lv["requests"] and lv["images_per_s"] > 0 for lv in levels)
    assert all(lv["p95_ms"] >= lv["p50_ms"] > 0 and lv["mean_batch"] >= 1 for lv in levels)
    assert result["server_device"] == "cpu" and result["machine"]["threads"] >= 1
