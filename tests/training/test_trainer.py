"""Training end to end on tiny generated data: run folder, checkpoints, resume."""
import json

import torch

from show_attend.checkpoint import load_checkpoint
from show_attend.training.trainer import train

from conftest import TINY, tiny_config


def test_run_folder_contents(trained_run):
    run_dir, cfg = trained_run
    for name in ("config.yaml", "vocab.json", "last.pt", "best.pt", "history.jsonl"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["step"] == 2 * 8  # 24 images x 5 captions / batch 16 = 8 steps per epoch
    assert "CIDEr" in rows[-1] and "val_loss_teacher_forced" in rows[-1]
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 16
    assert ckpt["vocab"]["itos"][:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert set(ckpt) >= {"decoder", "config", "optimizer", "scheduler", "rng", "best"}


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tmp_path):
    full = train(tiny_config(tmp_path / "a", "name=full", "train.val_every=5"), progress=False)
    # interrupted after one epoch (max_steps), then resumed with the same schedule
    first = train(tiny_config(tmp_path / "b", "name=part", "train.val_every=5", "train.max_steps=8"),
                  progress=False)
    assert load_checkpoint(first / "last.pt")["step"] == 8
    cfg = tiny_config(tmp_path / "b", "name=part", "train.val_every=5")
    resumed = train(cfg, resume=first, progress=False)
    assert resumed == first
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert b["epoch"] == 2 and b["step"] == a["step"] == 16
    for key in a["decoder"]:
        assert torch.allclose(a["decoder"][key], b["decoder"][key], atol=1e-5), key
    rows = (resumed / "history.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


def test_train_from_raw_images_with_fine_tuning(tmp_path):
    """No feature cache: the CNN runs every step, and block5 is trained and saved."""
    cfg = tiny_config(tmp_path, "name=ft", "encoder.fine_tune_last_block=true", "train.epochs=1",
                      "train.max_steps=2", "train.val_metric=loss")
    run = train(cfg, progress=False)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 2
    assert ckpt["encoder_block5"] and all(k.startswith("cnn.2") for k in ckpt["encoder_block5"])


def test_an_interrupted_run_saves_mid_epoch_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) stops at the next step boundary with a resumable last.pt; --resume then
    continues at the next batch and ends with the weights of an uninterrupted run."""
    from show_attend.cli import train_main
    from show_attend.training.trainer import Trainer

    full = train(tiny_config(tmp_path / "a", "name=full", "train.val_every=5"), progress=False)
    steps = {"n": 0}
    original = Trainer._xe_step

    def step_then_ask_to_stop(self, images, captions):
        steps["n"] += 1
        if steps["n"] == 11:  # epoch 2, batch 3: as if Ctrl-C arrived during this step
            self.stop.requested = True
        return original(self, images, captions)

    monkeypatch.setattr(Trainer, "_xe_step", step_then_ask_to_stop)
    args = ["--config", "shapes_demo", "--no-eval", "--no-progress"]
    overrides = [f"data.root={tmp_path / 'b' / 'shapes'}", f"data.cache_dir={tmp_path / 'b' / 'cache'}",
                 f"output_dir={tmp_path / 'b' / 'runs'}", "name=part", "train.val_every=5"]
    sets = [x for o in overrides + TINY for x in ("--set", o)]
    assert train_main(args + sets) == 130
    err = capsys.readouterr().err
    run = tmp_path / "b" / "runs" / "part"
    assert "stopped in epoch 2 after batch 3 (step 11)" in err and f"--resume {run}" in err
    saved = load_checkpoint(run / "last.pt")
    assert (saved["epoch"], saved["step"], saved["batch_in_epoch"]) == (1, 11, 3)
    monkeypatch.setattr(Trainer, "_xe_step", original)
    assert train_main(["--resume", str(run), "--no-eval", "--no-progress"]) == 0
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(run / "last.pt")
    assert (b["epoch"], b["step"], b["batch_in_epoch"]) == (2, 16, 0)
    for key in a["decoder"]:
        assert torch.allclose(a["decoder"][key], b["decoder"][key], atol=1e-5), key


def test_stop_request_turns_the_first_signal_into_a_flag_and_the_second_into_an_exit():
    import os
    import signal

    import pytest

    from show_attend.utils.runtime import StopRequest

    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second one: the default handler again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_non_finite_loss_stops_with_the_last_good_checkpoint_kept(tmp_path, capsys):
    from show_attend.cli import train_main

    run = train(tiny_config(tmp_path, "name=nan", "train.epochs=1"), progress=False)
    before = (run / "last.pt").read_bytes(), (run / "best.pt").read_bytes()
    code = train_main(["--resume", str(run), "--no-eval", "--no-progress", "--set", "train.epochs=2",
                       "--set", "optim.lr=1e38"])
    err = capsys.readouterr().err
    assert code == 1 and "epoch 2, batch" in err and "training stopped" in err and "Traceback" not in err
    assert ((run / "last.pt").read_bytes(), (run / "best.pt").read_bytes()) == before  # the good ones kept
    for line in (run / "history.jsonl").read_text().splitlines():  # strict JSON, one good epoch
        json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert len((run / "history.jsonl").read_text().splitlines()) == 1


def test_skip_nonfinite_skips_and_counts_bad_batches(tmp_path, monkeypatch):
    from show_attend.training.trainer import Trainer

    original = Trainer._xe_step
    calls = {"n": 0}

    def nan_on_the_second_batch(self, images, captions):
        calls["n"] += 1
        loss, parts = original(self, images, captions)
        return (loss * float("nan"), parts) if calls["n"] == 2 else (loss, parts)

    monkeypatch.setattr(Trainer, "_xe_step", nan_on_the_second_batch)
    run = train(tiny_config(tmp_path, "name=skip", "train.epochs=1", "train.skip_nonfinite=1"), progress=False)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 7 and ckpt["skipped_nonfinite"] == 1  # 8 batches, one skipped
    assert json.loads((run / "history.jsonl").read_text())["skipped_nonfinite"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["decoder"].values())


def test_resume_refuses_a_changed_meaning_before_writing_anything(trained_run, capsys):
    from show_attend.cli import train_main

    run_dir, _ = trained_run
    snapshot = {n: (run_dir / n).read_bytes() for n in ("config.yaml", "vocab.json", "last.pt")}
    for setting, key in (("data.min_word_count=3", "data.min_word_count"), ("encoder.grid_size=14", "encoder.grid_size"),
                         ("encoder.image_size=64", "encoder.image_size"), ("model.hidden_dim=64", "model.hidden_dim")):
        assert train_main(["--resume", str(run_dir), "--no-eval", "--set", setting, "--set", "train.epochs=3"]) == 2
        err = capsys.readouterr().err
        assert key in err and "change what the checkpoint means" in err and "train.epochs" in err
    assert {n: (run_dir / n).read_bytes() for n in snapshot} == snapshot  # nothing overwritten
    # a finished run: nothing to train is said, not silently done
    assert train_main(["--resume", str(run_dir), "--no-eval"]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert train_main(["--config", "shapes_demo", "--set", "train.epochs=0"]) == 2
    assert "nothing to train" in capsys.readouterr().err
