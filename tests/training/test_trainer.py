"""Training end to end on tiny generated data: run folder, checkpoints, resume."""
import json

import torch

from show_attend.checkpoint import load_checkpoint
from show_attend.training.trainer import train

from conftest import tiny_config


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
