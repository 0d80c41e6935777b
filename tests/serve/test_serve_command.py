"""`show-attend serve`: its flags reach the app, a non-loopback host is warned about, a missing extra
is one line and exit code 2, and --model takes checkpoints (an ensemble) or one exported folder."""
from __future__ import annotations

import importlib.util

import pytest

from show_attend.cli import serve_main

needs_serve = pytest.mark.skipif(importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None,
                                 reason="serving needs the [serve] extra")


@pytest.fixture
def started(monkeypatch):
    """Record what serve_main would serve instead of serving it."""
    import show_attend.serve.server as server

    seen = {}
    monkeypatch.setattr(server, "run_server", lambda app, host, port, log_level: seen.update(
        app=app, host=host, port=port))
    return seen


@needs_serve
def test_serve_passes_its_settings_and_binds_loopback(trained_run, started, capsys):
    run_dir, _ = trained_run
    assert serve_main(["--model", str(run_dir), "--port", "8123", "--max-batch", "4", "--max-upload-mb", "2",
                       "--device", "cpu"]) == 0
    state = started["app"].state
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    assert state.settings.max_batch == 4 and state.settings.max_upload_bytes == 2 * 2**20
    assert state.captioner.names == ["tiny"] and "warning" not in capsys.readouterr().err
    state.batcher.close()


@needs_serve
def test_an_ensemble_of_checkpoints_and_a_warning_off_loopback(trained_run, started, capsys):
    run_dir, _ = trained_run
    assert serve_main(["--model", str(run_dir / "best.pt"), "--model", str(run_dir / "last.pt"),
                       "--host", "0.0.0.0", "--device", "cpu"]) == 0
    captioner = started["app"].state.captioner
    assert len(captioner.members) == 2 and "mean of the 2" in captioner.attention_note
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    started["app"].state.batcher.close()


@needs_serve
def test_an_exported_folder_goes_alone(tmp_path, trained_run, capsys):
    run_dir, _ = trained_run
    (tmp_path / "model.json").write_text("{}")
    assert serve_main(["--model", str(tmp_path), "--model", str(run_dir)]) == 2
    assert "exported model folder" in capsys.readouterr().err


def test_without_the_serve_extra_it_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert serve_main(["--model", "anything"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'error: serving needs uvicorn: pip install "show-attend[serve]"' and "\n" not in err
