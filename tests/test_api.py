"""Captioner: any image file or PIL image, one or many, greedy or beam."""
import pytest
from PIL import Image

from show_attend import Captioner


@pytest.fixture(scope="module")
def captioner(trained_run):
    run_dir, _ = trained_run
    return Captioner.from_checkpoint(run_dir / "best.pt", device="cpu")


def test_caption_files_of_any_mode_and_size(captioner, tmp_path):
    rgb = tmp_path / "rgb.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(rgb)
    gray = tmp_path / "gray.jpg"
    Image.new("L", (50, 80), 128).save(gray)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (64, 64), (0, 0, 255, 100)).save(rgba)
    captions = captioner.caption([rgb, gray, rgba], beam_size=3)
    assert isinstance(captions, list) and len(captions) == 3
    assert all(isinstance(c, str) for c in captions)
    single = captioner.caption(str(rgb), beam_size=3)
    assert single == captions[0]
    assert captioner.caption(Image.open(rgb)) == captioner.caption(rgb)


def test_beam_one_is_greedy_and_attention_result(captioner, tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (120, 90), (20, 200, 20)).save(path)
    (res,) = captioner.caption_with_attention(path, beam_size=1)
    assert res.caption == captioner.caption(path, beam_size=1)
    assert res.decoded.alphas.shape == (len(res.decoded.words), 49)
    assert res.crop_box == (0.0, 0.0, 120.0, 90.0)  # squash: the whole photo


def test_missing_file_is_a_clear_error(captioner, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg: file not found"):
        captioner.caption(tmp_path / "nope.jpg")
