"""Evenness of a calibrated dial, in-sample and on photos a calibration did not see."""

from __future__ import annotations

import numpy as np
import pytest

from dpfusion.errors import DPFusionError
from dpfusion.eval.calibration import WEIGHT_GRID, calibrate, mean_curves
from dpfusion.eval.dial_evenness import evenness, held_out_evenness
from dpfusion.fusion.dial import LINEAR

GRID = np.asarray(WEIGHT_GRID)


def _scores(powers: list[float]) -> np.ndarray:
    """(photos, 1 rate, weights, 2): photo i's LPIPS falls as w ** powers[i]."""
    lpips = np.stack([0.4 - 0.2 * GRID**p for p in powers])
    return np.stack([lpips, 30 - GRID[None].repeat(len(powers), 0)], axis=-1)[:, None]


def test_a_linear_curve_is_even_under_the_linear_dial_and_a_square_root_is_not():
    (straight,) = mean_curves(_scores([1.0]), [0.0])
    (root,) = mean_curves(_scores([0.5]), [0.0])
    assert evenness(straight, LINEAR) == pytest.approx(0.0, abs=1e-9)
    # u(tau) = sqrt(1 - tau) under w = 1 - tau: the largest gap is 0.25, at tau = 0.75 (read at 0.7 / 0.8)
    assert 0.2 < evenness(root, LINEAR) <= 0.25
    assert evenness(root, calibrate([root])) < 0.01


def test_held_out_evenness_is_zero_for_alike_photos_and_grows_with_their_spread():
    alike = held_out_evenness(_scores([0.7] * 8), [0.0], resamples=20)
    spread = held_out_evenness(_scores([0.4, 0.5, 0.7, 1.0, 1.4, 2.0, 0.6, 1.2]), [0.0], resamples=20)
    assert alike.shape == (1,) and alike[0] < 0.01 < spread[0]


def test_a_held_out_estimate_needs_a_few_photos():
    with pytest.raises(DPFusionError, match="at least 4 photos"):
        held_out_evenness(_scores([1.0, 0.5, 2.0]), [0.0])
