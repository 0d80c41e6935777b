"""Attention heatmaps: geometry (the bright spot lies over the attended cell), figure, files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from show_attend.data.transforms import ImageTransform
from show_attend.viz.attention import (
    attention_overlay, plot_attention, render_attention, save_attention_figure, save_attention_gif,
)


def _one_hot(g: int, r: int, c: int) -> np.ndarray:
    a = np.zeros((g, g))
    a[r, c] = 1.0
    return a


def _photo(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("mode", ["bilinear", "gaussian", "nearest"])
@pytest.mark.parametrize("resize_mode", ["squash", "center_crop"])
@pytest.mark.parametrize("size", [(224, 224), (300, 200), (200, 300), (301, 200)])
@pytest.mark.parametrize("g", [7, 14])
def test_bright_spot_lies_over_the_attended_cell(g, size, resize_mode, mode):
    w, h = size
    box = ImageTransform(224, resize_mode).crop_box(w, h)
    x0, y0, x1, y1 = box
    cw, ch = (x1 - x0) / g, (y1 - y0) / g
    for r, c in [(0, 0), (g - 1, g - 1), (2, g - 3), (g // 2, 1), (g - 2, g // 2)]:
        heat = attention_overlay(_photo(w, h), _one_hot(g, r, c), box, mode=mode)
        assert heat.shape == (h, w)
        py, px = np.unravel_index(np.argmax(heat), heat.shape)
        # the brightest pixel's centre maps back into cell (r, c) of the region the encoder saw
        assert x0 + c * cw <= px + 0.5 < x0 + (c + 1) * cw, (r, c, px)
        assert y0 + r * ch <= py + 0.5 < y0 + (r + 1) * ch, (r, c, py)
        # the bright region (>= half max) is centred on the cell centre (within half a cell)
        ys, xs = np.nonzero(heat >= 0.5 * heat.max())
        weights = heat[ys, xs]
        cx, cy = np.average(xs + 0.5, weights=weights), np.average(ys + 0.5, weights=weights)
        edge_x = c in (0, g - 1)
        edge_y = r in (0, g - 1)
        assert abs(cx - (x0 + (c + 0.5) * cw)) <= (0.5 if edge_x else 0.25) * cw + 1
        assert abs(cy - (y0 + (r + 0.5) * ch)) <= (0.5 if edge_y else 0.25) * ch + 1


@pytest.mark.parametrize("g", [7, 14])
def test_center_crop_heat_is_zero_outside_the_crop(g):
    w, h = 300, 200
    box = ImageTransform(224, "center_crop").crop_box(w, h)
    assert box == (50.0, 0.0, 250.0, 200.0)
    heat = attention_overlay((w, h), np.full(g * g, 1.0 / g**2), box)
    assert np.all(heat[:, :50] == 0) and np.all(heat[:, 250:] == 0)
    np.testing.assert_allclose(heat[:, 50:250], 1.0 / g**2)
    # squash (crop_box None = whole photo): covers every pixel
    assert np.all(attention_overlay((w, h), np.full((g, g), 1.0), None) > 0)


def _caption():
    words = ["a", "dog", "runs", "on", "grass"]
    g = 7
    alphas = np.stack([_one_hot(g, t, t) for t in range(len(words))])
    betas = np.array([0.1, 0.42, 0.3, 0.05, 0.9])
    return words, alphas, betas


def test_figure_has_one_panel_per_word_plus_the_image():
    words, alphas, betas = _caption()
    fig = plot_attention(_photo(300, 200), words, alphas.reshape(len(words), -1), betas,
                         ImageTransform(224, "center_crop").crop_box(300, 200), ncols=4,
                         title="test")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 1 + len(words)
    assert all(not ax.axison for ax in fig.axes)
    titles = [ax.get_title() for ax in panels]
    assert titles[0].replace("\n", " ") == "a dog runs on grass"
    assert titles[1:] == ["a (β=0.10)", "dog (β=0.42)", "runs (β=0.30)", "on (β=0.05)", "grass (β=0.90)"]
    # the word panels differ from the photo panel (an overlay was drawn) and from each other
    arrays = [np.asarray(ax.get_images()[0].get_array(), dtype=float) for ax in panels]
    assert not np.allclose(arrays[0], arrays[1]) and not np.allclose(arrays[1], arrays[2])


def test_figure_without_betas_and_with_vector_gate():
    words, alphas, _ = _caption()
    fig = plot_attention(_photo(64, 64), words, alphas, None, normalize="global", cmap="gray")
    assert [ax.get_title() for ax in fig.axes if ax.get_images()][1:] == words
    vec = np.array([[0.2, 0.4]])  # a vector gate (T=1, D=2) is shown as its mean
    fig = plot_attention(_photo(64, 64), ["dog"], alphas[:1], vec)
    assert [ax.get_title() for ax in fig.axes if ax.get_images()][1] == "dog (β=0.30)"
    with pytest.raises(ValueError):
        plot_attention(_photo(64, 64), words[:2], alphas)


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_formats(tmp_path, suffix, magic):
    words, alphas, betas = _caption()
    fig = plot_attention(_photo(120, 80), words, alphas, betas)
    out = save_attention_figure(fig, tmp_path / "sub" / f"att{suffix}", dpi=60)
    assert out.read_bytes()[:5].startswith(magic)
    with pytest.raises(ValueError):
        save_attention_figure(fig, tmp_path / "att.jpg")


def test_render_attention_png_size_follows_dpi(tmp_path):
    words, alphas, betas = _caption()
    words, alphas, betas = words[:2], alphas[:2], betas[:2]
    a = render_attention(_photo(120, 80), words, alphas, betas, tmp_path / "a.png", dpi=50)
    b = render_attention(_photo(120, 80), words, alphas, betas, tmp_path / "b.png", dpi=100)
    assert Image.open(b).size[0] > 1.5 * Image.open(a).size[0]


def test_gif_has_one_frame_per_word(tmp_path):
    words, alphas, betas = _caption()
    words[3] = words[0]  # repeated words still give distinct frames
    path = save_attention_gif(_photo(300, 200), words, alphas, betas, tmp_path / "att.gif",
                              ImageTransform(224, "center_crop").crop_box(300, 200), duration_ms=300)
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == len(words)
        assert im.size[0] == 300 and im.size[1] > 200  # the photo plus a label band


def test_per_word_normalisation_min_max_inside_the_crop():
    from show_attend.viz.attention import _normalized_heats

    g = 7
    img = _photo(300, 200)
    box = ImageTransform(224, "center_crop").crop_box(300, 200)
    flat = np.full((g, g), 1.0 / g**2)
    peaked = _one_hot(g, 3, 3) * 0.5 + flat * 0.5
    heats = _normalized_heats(img, np.stack([flat, peaked]), box, "bilinear", 0.6, "per_word")
    assert np.all(heats[0] == 0)  # a uniform map has no preferred region
    assert heats[1].max() == pytest.approx(1.0) and heats[1][:, 50:250].min() == pytest.approx(0.0)
    assert np.all(heats[1][:, :50] == 0) and np.all(heats[1][:, 250:] == 0)
    glob = _normalized_heats(img, np.stack([flat, peaked]), box, "bilinear", 0.6, "global")
    assert glob[1].max() == pytest.approx(1.0)
    top = attention_overlay(img, peaked, box).max()  # about 0.5 + 0.5 / 49
    assert top == pytest.approx(0.5 + 0.5 / g**2, rel=0.05)  # nearest pixel is off-centre
    np.testing.assert_allclose(glob[0][:, 50:250], flat[0, 0] / top)
    assert plot_attention(img, [], np.zeros((0, g, g))).axes[0].get_title() == " "
