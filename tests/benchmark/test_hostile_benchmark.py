"""The hostile-load benchmark: a normal client beside large-pixel images and idle connections, against a real
`show-attend serve` process (tiny sizes; what it reports is checked, timings are not asserted)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
pytest.importorskip("uvicorn", reason="serving needs the [serve] extra")


def test_hostile_benchmark_reports_each_phase_and_refuses_every_bomb(trained_run, tmp_path, capsys):
    from show_attend.cli import benchmark_main

    run_dir, _ = trained_run
    out = tmp_path / "hostile.json"
    assert benchmark_main(["--serving", str(run_dir), "--hostile", "--requests", "3", "--bomb-clients", "2",
                           "--idle-connections", "40", "--connect-seconds", "2", "--device", "cpu",
                           "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| phase | normal client 200 OK |" in printed and "large-pixel answers" in printed
    result = json.loads(out.read_text())
    idle, bombs, accepted, conns = result["phases"]
    assert bombs["phase"] == "2 client(s) sending images over the pixel cap"
    assert accepted["phase"] == "2 client(s) sending 49 MP images (under the cap)"
    assert conns["phase"] == "up to 40 idle connections"
    for phase in (idle, bombs, accepted, conns):  # the normal client was served in every phase
        assert phase["ok"] == phase["requests"] >= 3 and phase["failures"] == 0
        assert phase["p95_ms"] >= phase["p50_ms"] > 0 and phase["peak_rss_mb"] > 0
    # every image over the cap was answered, never with a 200; the one under it was captioned (or 503: busy)
    assert set(bombs["bomb_slowest_s"]) == {"9459x9459 16-bit PNG", "30000x30000 PNG header", "1000x85000 TIFF"}
    assert all(k.endswith(": 413") for k in bombs["bomb_answers"]), bombs["bomb_answers"]
    assert set(accepted["bomb_answers"]) <= {"7000x7000 RGB PNG: 200", "7000x7000 RGB PNG: 503"}
    assert 0 < conns["idle"]["opened"] <= 40 and result["health_after"] == 200
