"""How even a calibrated dial is, and how even it should stay on photos it was not calibrated on.

A calibration is exactly even on its own photos by construction, so that figure says nothing. The
held-out estimate resamples the calibration photos (a bootstrap), calibrates on each resample and
measures the photos the resample left out: the spread a user should expect on new photos, from the
validation photos alone (never the test set).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpfusion.errors import DPFusionError
from dpfusion.eval import dial_criteria
from dpfusion.eval.calibration import KNOTS, WEIGHT_GRID, BlendCurve, calibrate, mean_curves
from dpfusion.eval.dial_criteria import Point
from dpfusion.fusion.dial import DialCalibration

INTERIOR_TAUS = tuple(round(0.1 * i, 1) for i in range(1, 10))
"""The dial positions the evenness bar is read at: tau = 0.1, ..., 0.9."""


def evenness(curve: BlendCurve, calibration: DialCalibration, taus: Sequence[float] = INTERIOR_TAUS) -> float:
    """:func:`dial_criteria.evenness` of the dial this calibration makes, read on the blend's scored curve."""
    positions = (0.0, *taus, 1.0)
    weights = [calibration.weight(t, curve.rate) for t in positions]
    lpips = np.interp(weights, curve.weights, curve.lpips)
    psnr = np.interp(weights, curve.weights, curve.psnr)
    return dial_criteria.evenness([Point(t, p, q) for t, p, q in zip(positions, psnr, lpips, strict=True)])


def held_out_evenness(
    scores: np.ndarray, rates: Sequence[float], weights: Sequence[float] = WEIGHT_GRID,
    resamples: int = 200, seed: int = 0, knots: Sequence[float] = KNOTS,
) -> np.ndarray:  # fmt: skip
    """Per rate, the mean evenness on the left-out photos of calibrations made on bootstrap resamples.

    ``scores`` is :func:`~dpfusion.eval.calibration.measure_image_curves`' ``(images, rates, weights, 2)``.
    """
    count = len(scores)
    if count < 4:
        raise DPFusionError(f"a held-out estimate needs at least 4 photos, got {count}")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < resamples:
        picked = rng.choice(count, count)
        left = np.setdiff1d(np.arange(count), picked)
        if not len(left):
            continue
        calibration = calibrate(mean_curves(scores[picked], rates, weights), knots)
        out.append([evenness(c, calibration) for c in mean_curves(scores[left], rates, weights)])
    return np.asarray(out).mean(axis=0)
