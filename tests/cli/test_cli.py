"""The command-line tools, called as a user would (in-process)."""
import json

from show_attend.cli import caption_main, evaluate_main, prepare_main, results_table_main
from PIL import Image

from conftest import REPO


def test_caption_tool_json(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    img = tmp_path / "a.png"
    Image.new("RGB", (90, 60), (250, 250, 0)).save(img)
    assert caption_main([str(img), "--checkpoint", str(run_dir), "--beam-size", "2", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["image"] == str(img) and isinstance(line["caption"], str)


def test_caption_tool_decodes_a_large_jpeg_reduced_as_the_server_does(trained_run, tmp_path, capsys, monkeypatch):
    """caption opens through open_scaled with the encoder's side: a 2400x1800 JPEG decodes at a DCT scale whose
    short side stays >= the model's input size, and that reduced image is what the model captions."""
    from show_attend.api import Captioner

    run_dir, _ = trained_run
    img = tmp_path / "big.jpg"
    Image.radial_gradient("L").resize((2400, 1800)).convert("RGB").save(img, quality=90)
    seen, real = [], Captioner.decode

    def decode(self, images, *args, **kwargs):
        seen.append((self.cfg.encoder.image_size, [im.size for im in images]))
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(Captioner, "decode", decode)
    assert caption_main([str(img), "--checkpoint", str(run_dir), "--beam-size", "2"]) == 0
    (side, [(w, h)]), = seen
    assert abs(w / h - 4 / 3) < 0.02 and side <= h < 2 * side  # e.g. 150x113 for the tests' 112 px
    assert capsys.readouterr().out.startswith(f"{img}\t")


def test_caption_tool_missing_image(trained_run, capsys):
    run_dir, _ = trained_run
    assert caption_main(["nope.jpg", "--checkpoint", str(run_dir)]) == 1
    assert "nope.jpg: file not found" in capsys.readouterr().err


def test_evaluate_tool(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    out = tmp_path / "ev"
    assert evaluate_main(["--checkpoint", str(run_dir / "best.pt"), "--split", "test", "--beam-size", "2",
                          "--tokenizer", "python", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["beam_size"] == 2 and metrics["settings"]["objective"] == "xe"
    captured = capsys.readouterr()
    assert "CIDEr" in captured.out and "it/s" not in captured.err  # --no-progress: no bars

    # the results table reads what was written, x100, with the row's provenance
    assert results_table_main([str(out), "--labels", "tiny run"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| configuration | objective | weights | grid | beam | split | B-1")
    row = [c.strip() for c in table[2].strip("|").split("|")]
    assert row[:6] == ["tiny run", "xe", "none", "7x7", "2", "test (6)"]
    assert row[-1] == f"{100 * metrics['metrics']['CIDEr']:.1f}"
    assert results_table_main([str(tmp_path / "nothing")]) == 2

    # the grounding table: the attention settings, the scores and their uniform baselines
    assert results_table_main([str(out), "--grounding"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    row = dict(zip(head, (c.strip() for c in table[2].strip("|").split("|"))))
    g = metrics["grounding"]
    assert row["texture"] == "flat" and row["grid"] == "7x7" and row["annotations"] == "none"
    assert row["pool"] in ("max", "-")  # "-": block5_conv3 is already the grid, nothing pooled
    def fmt(value, spec):  # a random-encoder model may name no object at all: n/a
        return "n/a" if value is None else spec.format(value)

    assert row["hit rate"] == fmt(g["hit_rate"], "{:.3f}") and row["mass in box"] == fmt(g["mass_in_box"], "{:.3f}")
    assert row["hit / uniform"] == fmt(g["hit_rate_ratio"], "{:.1f}x")
    assert row["peak on or next to box"] == fmt(g["near_rate"], "{:.3f}")
    assert row["uniform"] == fmt(g["uniform_near_rate"], "{:.3f}")

    # runs compared at one training budget: the validation the trainer logged after that epoch
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    last = [r for r in history if "CIDEr" in r][-1]
    assert results_table_main([str(run_dir), "--epoch", str(last["epoch"])]) == 0
    row = [c.strip() for c in capsys.readouterr().out.strip().splitlines()[2].strip("|").split("|")]
    assert row[0].endswith(f"@ epoch {last['epoch']}") and row[3] == "7x7"
    assert row[-1] == f"{100 * last['CIDEr']:.1f}"
    assert results_table_main([str(run_dir), "--epoch", "99"]) == 2


def test_evaluate_tool_default_folder_names_the_decoding(trained_run, tmp_path, capsys):
    """Without --out, each decoding gets its own folder: another length penalty overwrites nothing."""
    import shutil

    run_dir, _ = trained_run
    mine = tmp_path / "run"
    mine.mkdir()
    shutil.copy(run_dir / "best.pt", mine / "best.pt")
    common = ["--checkpoint", str(mine / "best.pt"), "--split", "test", "--beam-size", "2",
              "--tokenizer", "python", "--max-images", "2", "--no-progress"]
    assert evaluate_main(common) == 0
    assert evaluate_main(common + ["--length-penalty", "1.5"]) == 0
    assert evaluate_main(common + ["--ensemble", str(mine / "best.pt"), "--length-penalty", "0.5"]) == 0
    assert sorted(p.name for p in mine.iterdir() if p.is_dir()) == [
        "eval_test_b2", "eval_test_b2_lp0.5_ensemble", "eval_test_b2_lp1.5"]
    settings = json.loads((mine / "eval_test_b2_lp1.5" / "metrics.json").read_text())["settings"]
    assert settings["length_penalty"] == 1.5 and settings["images"] == 2
    assert f"wrote {mine / 'eval_test_b2_lp1.5'}/" in capsys.readouterr().out


def test_prepare_tool_reports_and_config_typo(tmp_path, capsys):
    cfg = REPO / "configs" / "shapes_demo.yaml"
    args = ["--config", str(cfg), "--set", f"data.root={tmp_path / 's'}", "--set", f"data.cache_dir={tmp_path / 'c'}",
            "--set", "data.synthetic.num_train=5", "--set", "data.synthetic.num_val=2",
            "--set", "data.synthetic.num_test=2"]
    assert prepare_main(args) == 0
    out = capsys.readouterr().out
    assert "train:      5 images" in out and "vocabulary" in out and "skipped" in out
    assert prepare_main(["--config", str(cfg), "--set", "data.sorce=x"]) == 2  # a typo stops the tool
    assert "valid keys in data: source" in capsys.readouterr().err


def test_show_attend_command_lists_its_subcommands_and_config_sections(capsys):
    from show_attend.cli import COMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("prepare", "extract", "train", "evaluate", "caption", "visualize",
                                         "benchmark", "results")) and set(COMMANDS) >= {"train", "results"}
    assert main(["trian"]) == 2 and "unknown command 'trian'" in capsys.readouterr().err
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("show-attend 0.")
    try:
        main(["train", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "usage: show-attend train" in out and "model: embed_dim, hidden_dim" in out
    assert "shipped configs (--config NAME): " in out and "flickr8k_vgg16_7x7" in out


def test_python_dash_m_and_a_config_by_name(tmp_path, capsys):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "show_attend", "--help"], capture_output=True, text=True, check=True)
    assert "usage: show-attend <command>" in out.stdout
    # a shipped config addressed by name, run from a folder that is not the checkout
    assert prepare_main(["--config", "shapes_demo", "--set", f"data.root={tmp_path / 's'}",
                         "--set", f"data.cache_dir={tmp_path / 'c'}", "--set", "data.synthetic.num_train=4",
                         "--set", "data.synthetic.num_val=2", "--set", "data.synthetic.num_test=2"]) == 0
    assert "train:      4 images" in capsys.readouterr().out
    assert prepare_main(["--config", "no_such_config"]) == 2
    assert "shipped configs (by name)" in capsys.readouterr().err


def test_the_wheel_ships_the_configs_and_the_command(tmp_path):
    """A non-editable install gets the configs as package data and the console script."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("show_attend-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[-1] for n in names if n.startswith("show_attend/configs/")}
    assert {p.name for p in (REPO / "show_attend" / "configs").glob("*.yaml")} == shipped
    assert {"show_attend/cli/__init__.py", "show_attend/model/decoder.py", "show_attend/metrics/scoring.py"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "show-attend = show_attend.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_a_broken_checkpoint_is_one_line_naming_the_file(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run_dir / "best.pt").read_bytes()[:5000])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    for path, why in ((truncated, "truncated or not a PyTorch file"), (empty, "empty file"),
                      (text, "truncated or not a PyTorch file")):
        assert evaluate_main(["--checkpoint", str(path), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: {why}") and "Traceback" not in err and len(err.splitlines()) == 1


def test_evaluate_refuses_a_grid_other_than_the_checkpoints(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    assert evaluate_main(["--checkpoint", str(run_dir), "--set", "encoder.grid_size=14", "--out",
                          str(tmp_path / "e"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "encoder.grid_size: 7 in the checkpoint, 14 now" in err and not (tmp_path / "e").exists()
