"""The attention-supervision loss (Liu et al. 2017) on hand-computed cases."""
from __future__ import annotations

import math

import torch

from show_attend.model.losses import attention_supervision_loss


def test_the_loss_is_the_mean_over_supervised_words_of_the_cross_entropy_with_the_box_mask():
    # B = 1, T = 3 steps, L = 4 cells. Step 0: a box over cells 0 and 1 (m = 1/2, 1/2); step 1: no
    # box (other words add nothing); step 2: a box over cell 3 only.
    alphas = torch.tensor([[[0.4, 0.1, 0.25, 0.25],
                            [0.01, 0.01, 0.01, 0.97],
                            [0.1, 0.2, 0.3, 0.4]]])
    targets = torch.tensor([[[0.5, 0.5, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 1.0]]])
    loss, count = attention_supervision_loss(alphas, targets)
    expected = (-(0.5 * math.log(0.4) + 0.5 * math.log(0.1)) - math.log(0.4)) / 2
    assert count == 2
    assert abs(float(loss) - expected) < 1e-6


def test_a_uniform_map_scores_log_l_and_the_mask_itself_its_entropy():
    targets = torch.zeros(2, 1, 4)
    targets[0, 0, :2] = 0.5  # two cells
    targets[1, 0, 2] = 1.0  # one cell
    uniform, _ = attention_supervision_loss(torch.full((2, 1, 4), 0.25), targets)
    assert abs(float(uniform) - math.log(4)) < 1e-6
    exact, _ = attention_supervision_loss(targets.clamp_min(1e-12) / targets.clamp_min(1e-12).sum(2, keepdim=True),
                                          targets)
    assert abs(float(exact) - math.log(2) / 2) < 1e-5  # (entropy log 2 + entropy 0) / 2


def test_no_supervised_word_gives_zero_and_the_gradient_moves_alpha_towards_the_box():
    scores = torch.zeros(1, 2, 3, requires_grad=True)
    loss, count = attention_supervision_loss(torch.softmax(scores, 2), torch.zeros(1, 2, 3))
    assert count == 0 and float(loss) == 0.0
    targets = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    loss, _ = attention_supervision_loss(torch.softmax(scores, 2), targets)
    loss.backward()
    # d/ds of -log softmax(s)_1 = softmax(s) - onehot(1): the boxed cell's score goes up, the others down
    assert torch.allclose(scores.grad[0, 0], torch.tensor([1 / 3, 1 / 3 - 1, 1 / 3]), atol=1e-6)
    assert torch.all(scores.grad[0, 1] == 0)
