"""The benchmark runs end to end (tiny sizes; timings are not asserted), and the peer design it
compares against is a real beam search: on captions that never end early it finds our best caption."""
from __future__ import annotations

import json

import torch

from show_attend.benchmark import BenchSettings, format_report, run_benchmark
from show_attend.benchmark.peers import tutorial_beam_search
from show_attend.benchmark.stages import IDS, make_decoder
from show_attend.model.decoding import beam_search


def test_the_tutorial_loop_finds_the_same_caption_as_batched_beam_search():
    torch.manual_seed(0)
    dec = make_decoder(60, 32, torch.device("cpu")).eval()
    with torch.no_grad():
        dec.L_o.weight.mul_(20)  # sharp, context-dependent distributions
        for i in (IDS["pad_id"], IDS["start_id"], IDS["unk_id"]):  # ours never emits these
            dec.L_o.bias[i] = -1e4
    feats = torch.randn(4, 49, 512)
    ours = beam_search(dec, feats, beam_size=3, max_length=8, **IDS)
    for b in range(4):
        theirs = tutorial_beam_search(dec, feats[b: b + 1], beam_size=3, start_id=1, end_id=2, max_length=8)
        assert theirs == ours[b].token_ids


def test_quick_benchmark_reports_every_stage_and_ratio(tmp_path, capsys):
    from show_attend.cli import benchmark_main

    result = run_benchmark(torch.device("cpu"), BenchSettings.quick())
    for stage in ("decode", "train", "cnn", "extract", "memory", "scoring", "derived"):
        assert result[stage], stage
    d = result["derived"]
    assert d["speedup_beam5_vs_per_image"] > 0 and d["speedup_train_cached_vs_cnn"] > 0
    assert d["predicted_flickr8k_epoch_s"] > d["flickr8k_epoch_train_s"] > 0
    assert 0 < result["cnn"]["cnn_bf16_feature_rel_error"] < 0.05  # bf16 features near fp32 ones
    assert "cpu_flags_bf16" in result["machine"] and "**derived**" in format_report(result)
    out = tmp_path / "bench.json"
    assert benchmark_main(["--quick", "--device", "cpu", "--parts", "decode", "--no-bf16", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert "speedup_beam5_vs_per_image" in data["derived"] and "| measure | value |" in capsys.readouterr().out
