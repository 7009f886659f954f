"""Dial calibration: inverting the blend's LPIPS curve into even steps, measured on real decodes."""

from __future__ import annotations

import numpy as np
import pytest

from dpfusion.api import Model
from dpfusion.errors import DPFusionError
from dpfusion.eval.calibration import KNOTS, WEIGHT_GRID, BlendCurve, calibrate, even_weights, measure_blend_curves
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
