"""The model shipped inside the package: found by name, used by default, refused on other encoder weights,
inside the wheel; and the repository stays small around it."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from show_attend import Captioner
from show_attend.zoo import DEFAULT_MODEL, default_model_folder, shipped_model_folder, shipped_models

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def photo_like(path: Path, seed: int = 0) -> Path:
    """A deterministic 'photo': sky, grass, and a brown blob with texture (no real photo in the repository)."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    img = np.zeros((h, w, 3), np.float32)
    img[: h // 2] = (120, 170, 230)
    img[h // 2:] = (60, 140, 50)
    yy, xx = np.mgrid[:h, :w]
    blob = ((yy - 150) / 40) ** 2 + ((xx - 160) / 70) ** 2 < 1
    img[blob] = (140, 90, 40)
    img += rng.normal(0, 12, img.shape)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def shipped():
    return Captioner.from_pretrained(DEFAULT_MODEL, device="cpu")


def test_the_default_model_ships_in_the_package():
    assert DEFAULT_MODEL in shipped_models()
    folder = default_model_folder()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "decoder-0.safetensors", "encoder.safetensors", "model.json", "vocab.json"]
    info = json.loads((folder / "model.json").read_text())
    assert info["dtype"] == "float16" and info["encoder"]["weights_fingerprint"] and info["data"]["source"] == "flickr8k"
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert 35e6 < size < 50e6, size  # VGG16 to block5_conv3 and the decoder in float16: about 44 MB
    card = (folder / "README.md").read_text()
    assert "CC BY 4.0" in card and "Simonyan" in card and "test" in card
    assert shipped_model_folder("no_such_model") is None and shipped_model_folder("../configs") is None


def test_the_named_model_captions_deterministically(shipped, tmp_path):
    image = photo_like(tmp_path / "photo.png")
    first = shipped.caption(image)
    again = Captioner.from_pretrained(DEFAULT_MODEL, device="cpu").caption(str(image))
    assert first == again and 3 <= len(first.split()) <= 20
    assert all(word in shipped.vocab for word in first.split())
    result = shipped.caption_with_attention(image)[0]
    assert result.decoded.alphas.shape == (len(result.decoded.words), 49)  # a heatmap per word, 7x7


@pytest.mark.skipif(not (SHARED / "flickr8k" / "Images").is_dir(), reason="no ../shared/flickr8k on this machine")
def test_the_shipped_model_describes_real_photos(shipped):
    """Twenty dev photos: the captions share most of their words with the human ones (BLEU-1 as pycocoevalcap)."""
    from show_attend.metrics.scoring import score_captions

    root = SHARED / "flickr8k"
    names = (root / "Flickr_8k.devImages.txt").read_text().split()[:20]
    refs: dict[str, list[str]] = {}
    for line in (root / "Flickr8k.token.txt").read_text().splitlines():
        key, _, text = line.partition("\t")
        name = key.split("#")[0]
        if name in names:
            refs.setdefault(name, []).append(text)
    captions = shipped.caption([str(root / "Images" / n) for n in names], beam_size=3)
    report = score_captions(dict(zip(names, captions)), refs, metrics=("Bleu",), tokenizer="python")
    assert report.scores["Bleu_1"] > 0.5, (report.scores, captions[:5])


def test_commands_use_the_shipped_model_by_default(tmp_path, capsys):
    from show_attend.cli import caption_main

    image = photo_like(tmp_path / "photo.png")
    assert caption_main([str(image)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(image)) and len(out.split("\t")[1].split()) >= 3


def test_a_different_vgg16_is_refused(tmp_path):
    """torchvision's VGG16 is not the Oxford VGG16 the model was trained on: a file of it is refused by its sha256,
    and (checked by fingerprint) so is any encoder whose weights are not the model's."""
    import torch
    import torchvision

    from show_attend.model.weights import EncoderMismatchError
    from show_attend.pretrained import load_pretrained

    torch.manual_seed(0)
    other = tmp_path / "vgg16_other.pth"
    torch.save(torchvision.models.vgg16(weights=None).features.state_dict(), other)
    with pytest.raises(ValueError, match="not the VGG16 weights this model was trained on"):
        Captioner.from_pretrained(DEFAULT_MODEL, encoder_weights=str(other))
    model = load_pretrained(DEFAULT_MODEL)
    model.cfg.encoder.weights = str(other)  # as if the sha256 check had been passed
    with pytest.raises(EncoderMismatchError):
        model.build_encoder()


def _tracked_files() -> list[Path]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / p for p in out.decode().split("\0") if p]


def test_no_tracked_file_but_the_shipped_weights_exceeds_2_mb():
    models = REPO / "show_attend" / "pretrained_models"
    big = [p for p in _tracked_files() if p.is_file() and p.stat().st_size > 2 * 1024 * 1024
           and not (p.suffix == ".safetensors" and models in p.parents)]
    assert not big, big


def test_the_wheel_holds_the_model(tmp_path):
    """Build the wheel as pip does and look inside (the installed-package run is in .ci/run)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
                           str(REPO)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"pip could not build a wheel here: {done.stderr.strip().splitlines()[-1:]}")
    wheel = next(tmp_path.glob("show_attend-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for file in default_model_folder().iterdir():
        assert f"show_attend/pretrained_models/{DEFAULT_MODEL}/{file.name}" in names
