"""Dial calibration: inverting the blend's LPIPS curve into even steps, measured on real decodes."""

from __future__ import annotations

import numpy as np
import pytest

from dpfusion.api import Model
from dpfusion.errors import DPFusionError
from dpfusion.eval.calibration import (
    KNOTS,
    WEIGHT_GRID,
    BlendCurve,
    calibrate,
    even_weights,
    mean_curves,
    measure_blend_curves,
)
from dpfusion.eval.dial_criteria import Point, wasted
from dpfusion.fusion.image_dial import PSNR_SLACK_DB, BlendOptimum, mean_psnr_floor
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import to_tensor
from dpfusion.metrics import METRICS
from tests.fusion.conftest import build_fusion


def _curve(lpips_of_weight, rate: float = 0.0) -> BlendCurve:
    grid = np.asarray(WEIGHT_GRID)
    return BlendCurve(rate, WEIGHT_GRID, tuple(lpips_of_weight(grid)), tuple(30 - grid), 3)


def test_a_square_root_curve_calibrates_to_a_square():
    """LPIPS falling as sqrt(w) travels the share sqrt(w): even steps need w = (1 - tau)^2."""
    weights = np.asarray(even_weights(_curve(lambda w: 0.4 - 0.3 * np.sqrt(w))))
    np.testing.assert_allclose(weights, (1 - np.asarray(KNOTS)) ** 2, atol=0.01)
    assert weights[0] == 1.0 and weights[-1] == 0.0


def test_noise_and_overshoot_still_give_a_falling_curve():
    rng = np.random.default_rng(0)
    wiggly = _curve(lambda w: 0.4 - 0.3 * np.minimum(1.0, 1.2 * w) + 0.004 * rng.standard_normal(w.shape))
    weights = np.asarray(even_weights(wiggly))
    assert weights[0] == 1.0 and weights[-1] == 0.0 and np.all(np.diff(weights) <= 0)
    cal = calibrate([wiggly, _curve(lambda w: 0.3 - 0.2 * w, rate=3.0)])
    assert sorted(cal.weights) == [0.0, 3.0]
    assert cal.weight(0.5, 3.0) == pytest.approx(0.5, abs=0.02)


def test_a_realistic_end_that_is_not_better_is_refused():
    with pytest.raises(DPFusionError, match="no lower LPIPS"):
        even_weights(_curve(lambda w: 0.2 + 0.1 * w))


def test_measured_curves_score_what_the_decoder_renders(tiny_gain_codec, tiny_image_factory):
    tiny_image = tiny_image_factory(176, 176)  # MS-SSIM (no weights to prepare) needs 161 pixels a side
    model = Model(tiny_gain_codec, build_fusion(tiny_gain_codec.latent_channels), NoiseSchedule(100), image_dial=False)
    (curve,) = measure_blend_curves(model, [tiny_image], [0.0], steps=2, weights=(0.0, 0.5, 1.0), metric="ms_ssim")
    data = model.compress(tiny_image, quality=0.0)
    base, real = model.decompress_many(data, [1.0, 0.0], steps=2)
    halfway = Model(model.codec, model.fusion, model.schedule, tau_mode="linear").decompress(data, 0.5, steps=2)
    x = to_tensor(tiny_image)
    for weight, image in ((0.0, base), (0.5, halfway), (1.0, real)):
        i = curve.weights.index(weight)
        assert curve.psnr[i] == pytest.approx(float(METRICS["psnr"](to_tensor(image), x)[0]), abs=1e-9)
        assert curve.lpips[i] == pytest.approx(float(METRICS["ms_ssim"](to_tensor(image), x)[0]), abs=1e-9)
    assert curve.images == 1 and curve.to_dict()["ms_ssim"] == curve.lpips


def _quadratic_psnr(weights, optimum: float, least_mse: float, power: float) -> np.ndarray:
    """A photo's PSNR along the blend: its MSE is ``least_mse + power (w - optimum)^2`` (dB of unit peak)."""
    weights = np.asarray(weights, dtype=np.float64)
    return -10.0 * np.log10(least_mse + power * (weights - optimum) ** 2)


def test_one_photos_mean_psnr_floor_is_its_closed_form_floor():
    psnr = _quadratic_psnr(WEIGHT_GRID, 0.3, 1e-3, 4e-3)
    assert mean_psnr_floor(WEIGHT_GRID, psnr[None]) == pytest.approx(BlendOptimum(0.3, 0.25).psnr_floor(), abs=5e-4)
    falling = _quadratic_psnr(WEIGHT_GRID, 0.0, 1e-3, 4e-3)
    assert mean_psnr_floor(WEIGHT_GRID, falling[None]) == 0.0


def test_several_photos_floor_where_their_mean_psnr_comes_within_the_slack():
    photos = [(0.05, 1e-3, 2e-3), (0.5, 2e-3, 8e-3), (0.25, 5e-4, 1e-3)]
    psnr = np.stack([_quadratic_psnr(WEIGHT_GRID, *p) for p in photos])
    floor = mean_psnr_floor(WEIGHT_GRID, psnr)
    fine = np.linspace(0.0, 1.0, 100001)
    mean = np.mean([_quadratic_psnr(fine, *p) for p in photos], axis=0)
    first = fine[np.argmax(mean >= mean.max() - PSNR_SLACK_DB)]
    assert 0.05 < floor < fine[np.argmax(mean)]
    assert floor == pytest.approx(first, abs=1e-3)


def _rising_scores() -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Three photos whose blend's LPIPS falls evenly while its PSNR peaks 0.3-0.4 of the way in."""
    photos = [(0.3, 1e-3, 1e-3), (0.35, 1.2e-3, 1.5e-3), (0.4, 8e-4, 1e-3)]
    grid = np.asarray(WEIGHT_GRID)
    scores = np.zeros((len(photos), 1, len(grid), 2))
    for i, photo in enumerate(photos):
        scores[i, 0, :, 0] = 0.4 - 0.3 * grid
        scores[i, 0, :, 1] = _quadratic_psnr(grid, *photo)
    return scores, photos


def _dial_points(calibration, photos) -> list[Point]:
    points = []
    for tau in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0):
        w = calibration.weight(tau, 0.0)
        psnr = float(np.mean([_quadratic_psnr([w], *p)[0] for p in photos]))
        points.append(Point(tau, psnr, 0.4 - 0.3 * w))
    return points


def test_calibration_leaves_no_interior_knot_on_the_rising_side_of_the_blends_psnr():
    scores, photos = _rising_scores()
    (curve,) = mean_curves(scores, [0.0])
    assert 0.25 < curve.psnr_floor < 0.35 and curve.to_dict()["psnr_floor"] == curve.psnr_floor
    weights = np.asarray(even_weights(curve))
    even = 1.0 - np.asarray(KNOTS)
    assert weights[0] == 1.0 and weights[-1] == 0.0
    np.testing.assert_allclose(weights[1:-1], np.maximum(even[1:-1], curve.psnr_floor), atol=0.01)
    assert wasted(_dial_points(calibrate([curve]), photos)) == ()
    unfloored = BlendCurve(curve.rate, curve.weights, curve.lpips, curve.psnr, curve.images)
    assert wasted(_dial_points(calibrate([unfloored]), photos)), "without the floor tau = 0.9 is beaten"
