"""Attention-map geometry: upsampling from the actual grid, cell centres on cell centres."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from show_attend.model.geometry import as_grids, pools_block5, upsample_attention


def _one_hot(g: int, r: int, c: int) -> np.ndarray:
    a = np.zeros((g, g))
    a[r, c] = 1.0
    return a


@pytest.mark.parametrize("g", [7, 14])
@pytest.mark.parametrize("size", [(35, 35), (100, 60), (224, 224), (61, 97)])
def test_bilinear_matches_torch_interpolate(g, size):
    w, h = size
    a = np.random.default_rng(g).random((g, g))
    ours = upsample_attention(a, w, h, mode="bilinear")
    ref = F.interpolate(torch.tensor(a)[None, None], size=(h, w), mode="bilinear", align_corners=False)
    assert ours.shape == (h, w)
    np.testing.assert_allclose(ours, ref[0, 0].numpy(), atol=1e-10)


@pytest.mark.parametrize("mode", ["bilinear", "gaussian", "nearest"])
@pytest.mark.parametrize("g", [7, 14])
def test_upsample_keeps_uniform_maps_uniform_and_cell_values(mode, g):
    out = upsample_attention(np.full((g, g), 1.0 / g**2), 3 * g, 5 * g, mode=mode)
    np.testing.assert_allclose(out, 1.0 / g**2)
    a = np.random.default_rng(1).random((g, g))
    up = upsample_attention(a.reshape(-1), 3 * g, 3 * g, mode=mode)  # flat input accepted
    if mode != "gaussian":  # cell centres land on cell centres: pixel 3k+1 is the centre of cell k
        np.testing.assert_allclose(up[1::3, 1::3], a, atol=1e-12)
    # total mass ~ sum(alpha) * pixels per cell
    assert up.sum() == pytest.approx(a.sum() * 9, rel=0.02 if mode == "gaussian" else 1e-9)


@pytest.mark.parametrize("g", [7, 14])
def test_last_cell_lights_the_corner_for_any_grid(g):
    """No hard-coded 14x14 factor: the last cell of a 7x7 grid is the bottom-right of the image."""
    up = upsample_attention(_one_hot(g, g - 1, g - 1), 224, 224)
    y, x = np.unravel_index(np.argmax(up), up.shape)
    assert y >= 224 - 224 / g and x >= 224 - 224 / g
    assert up[: 224 // 2, :].max() == 0.0 and up[:, : 224 // 2].max() == 0.0


def test_as_grids_shapes_and_errors():
    assert as_grids(np.zeros((3, 49))).shape == (3, 7, 7)
    assert as_grids(torch.zeros(2, 14, 14)).shape == (2, 14, 14)
    with pytest.raises(ValueError):
        as_grids(np.zeros((3, 50)))


def test_pools_block5_only_when_the_map_is_finer_than_the_grid():
    assert pools_block5(7, 224) and not pools_block5(14, 224) and not pools_block5(7, 112)


def test_geometry_needs_no_torch():
    """viz and grounding share this module; it must stay numpy-only."""
    import subprocess
    import sys

    code = "import sys, show_attend.model.geometry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
