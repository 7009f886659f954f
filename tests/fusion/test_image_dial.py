"""The sender's per-image dial: the inversion, the fit on a real LPIPS curve, where it scores, how a file carries it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpfusion.api import Model
from dpfusion.bitstream import DIAL_CODE_STEPS, decode_dial, encode_dial, unpack
from dpfusion.errors import DPFusionError
from dpfusion.eval.sweep import model_signature
from dpfusion.fusion import image_dial
from dpfusion.fusion.dial import blend
from dpfusion.fusion.image_dial import (
    FULL_IMAGE_PIXELS,
    IMAGE_DIAL_KNOTS,
    PROBE_WEIGHTS,
    PSNR_SLACK_DB,
    BlendOptimum,
    blend_optimum,
    blend_scores,
    even_weights,
    fit_image_dial,
    image_calibration,
    probe_regions,
)
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import to_tensor, to_uint8
from tests.fusion.conftest import build_fusion

torch.set_num_threads(1)
INTERIOR = IMAGE_DIAL_KNOTS[1:-1]


def test_even_weights_invert_a_known_curve() -> None:
    # LPIPS(w) = 1 - sqrt(w): the share travelled is sqrt(w), so an even dial has w(tau) = (1 - tau)^2
    grid = np.linspace(0, 1, 401)
    weights = even_weights(grid, 1.0 - np.sqrt(grid), IMAGE_DIAL_KNOTS, "test")
    np.testing.assert_allclose(weights, (1.0 - np.asarray(IMAGE_DIAL_KNOTS)) ** 2, atol=2e-3)


def test_even_weights_survive_a_blend_that_beats_the_realistic_end() -> None:
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    weights = even_weights(grid, (1.0, 0.6, 0.3, 0.1, 0.2), IMAGE_DIAL_KNOTS, "test")  # w = 0.75 beats w = 1
    assert weights[0] == 1.0 and weights[-1] == 0.0
    assert all(a >= b for a, b in zip(weights, weights[1:], strict=False))


def test_even_weights_refuse_a_realistic_end_that_is_no_better() -> None:
    with pytest.raises(DPFusionError, match="no lower LPIPS"):
        even_weights((0.0, 1.0), (0.3, 0.3), IMAGE_DIAL_KNOTS, "photo.png")


def _ends(image: np.ndarray, shift: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A blurred base and a realistic end that is the original, dimmed in contrast by ``shift``, plus faint noise:
    LPIPS falls all along the blend while PSNR peaks inside it (at w* = 0.41 for ``shift`` 0.1)."""
    x = to_tensor(image)
    base = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    noise = 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    return base, (x * (1 - 2 * shift) + shift + noise).clamp(0, 1)


def _psnr(reference: np.ndarray, base: torch.Tensor, real: torch.Tensor, weight: float) -> float:
    """PSNR of the blend before rounding, straight from its definition."""
    mse = float(((to_tensor(reference) - blend(base, real, weight)) ** 2).mean())
    return 10 * np.log10(1.0 / mse)


def test_blend_optimum_is_the_least_mse_weight_and_its_floor_costs_the_slack(tiny_image_factory) -> None:
    image = tiny_image_factory(48, 64, seed=3)
    base, real = _ends(image)
    optimum = blend_optimum(image, base, real)
    grid = np.linspace(0, 1, 2001)
    best = grid[np.argmax([_psnr(image, base, real, w) for w in grid])]
    assert 0.1 < optimum.weight < 0.9 and abs(optimum.weight - best) <= 1e-3
    peak = _psnr(image, base, real, optimum.weight)
    for slack in (0.0, PSNR_SLACK_DB, 0.1):
        floor = optimum.psnr_floor(slack)
        assert floor <= optimum.weight
        assert peak - _psnr(image, base, real, floor) == pytest.approx(slack, abs=1e-4)
    assert blend_optimum(image, base, base.clone()) == BlendOptimum(0.0, 0.0)  # no blend to speak of: no floor


def test_fitted_dial_is_even_on_its_own_image_down_to_its_psnr_floor(tiny_image_factory, metric_weights) -> None:
    image = tiny_image_factory(96, 128, seed=2)
    base, real = _ends(image)
    weights = np.asarray(fit_image_dial(image, base, real))
    assert len(weights) == len(INTERIOR)
    assert decode_dial(encode_dial(weights)) == tuple(weights)  # already quantised as a file stores it
    floor = blend_optimum(image, base, real).psnr_floor()
    step = 2 * np.sqrt(floor) / DIAL_CODE_STEPS
    raised = weights <= floor + step
    assert 2 <= raised.sum() <= len(INTERIOR) - 3, "this image must have knots above and at its floor"
    np.testing.assert_allclose(weights[raised], floor, atol=step)
    lpips = blend_scores(image, base, real, (0.0, *weights, 1.0))[:, 0]
    shares = (lpips[0] - lpips[1:-1]) / (lpips[0] - lpips[-1])
    np.testing.assert_allclose(shares[~raised], 1.0 - np.asarray(INTERIOR)[~raised], atol=0.05)
    # the linear blend (w = 1 - tau) is far from even on the same image: the fit did the work
    linear = blend_scores(image, base, real, (0.0, *(1.0 - np.asarray(INTERIOR)), 1.0))[:, 0]
    linear_shares = (linear[0] - linear[1:-1]) / (linear[0] - linear[-1])
    assert np.max(np.abs(linear_shares - (1.0 - np.asarray(INTERIOR)))) > 0.1


def test_no_knot_is_left_below_the_psnr_peak_where_a_nearer_one_wins(monkeypatch) -> None:
    # LPIPS falls linearly along the blend; the original lies at w = 0.3 on it exactly, so the floor is 0.3
    monkeypatch.setattr(image_dial, "blend_scores", lambda r, b, x, w, m=None: np.stack([1 - np.asarray(w)] * 2, 1))
    base, real = torch.zeros(1, 3, 8, 8), torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    reference = to_uint8(blend(base, real, 0.3))
    floor = blend_optimum(reference, base, real).psnr_floor()
    assert floor == pytest.approx(0.3, abs=0.01)
    weights = np.asarray(fit_image_dial(reference, base, real))
    even = 1.0 - np.asarray(INTERIOR)
    np.testing.assert_allclose(weights, np.maximum(even, floor), atol=2 * np.sqrt(0.3) / DIAL_CODE_STEPS)


def test_no_dial_is_fitted_where_the_realistic_end_is_no_better(tiny_image_factory, metric_weights) -> None:
    image = tiny_image_factory(64, 64)
    base, _ = _ends(image)
    assert fit_image_dial(image, base, base.clone()) is None


def test_large_images_are_scored_on_a_grid_of_crops() -> None:
    assert probe_regions(512, 768) == [(slice(0, 512), slice(0, 768))]
    regions = probe_regions(3000, 4000)
    assert 3000 * 4000 > FULL_IMAGE_PIXELS and len(regions) == 16
    assert all(r.stop - r.start == 512 and c.stop - c.start == 512 for r, c in regions)
    assert (regions[0][0].start, regions[0][1].start) == (0, 0)
    assert (regions[-1][0].stop, regions[-1][1].stop) == (3000, 4000)


def test_crops_are_what_is_scored(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(image_dial, "FULL_IMAGE_PIXELS", 100)
    monkeypatch.setattr(image_dial, "CROP", 8)
    monkeypatch.setattr(image_dial, "CROP_GRID", 2)

    def scores(reference, base, real, weights, metric="lpips_alex"):
        seen.append((reference.shape, tuple(base.shape), tuple(real.shape)))
        return np.stack([1.0 - np.asarray(weights), np.zeros(len(weights))], axis=1)

    monkeypatch.setattr(image_dial, "blend_scores", scores)
    image = np.zeros((20, 30, 3), np.uint8)
    weights = fit_image_dial(image, torch.zeros(1, 3, 20, 30), torch.ones(1, 3, 20, 30))
    assert seen == [((8, 8, 3), (1, 3, 8, 8), (1, 3, 8, 8))] * 4
    np.testing.assert_allclose(weights, 1.0 - np.asarray(INTERIOR), atol=0.004)


def test_image_calibration_maps_scalars_and_maps() -> None:
    weights = decode_dial(bytes([250, 245, 240, 200, 160, 130, 100, 80, 60, 40, 20]))
    dial = image_calibration(weights, 2.0)
    assert dial.weight(1.0, 2.0) == 0.0 and dial.weight(0.0, 2.0) == 1.0
    for tau, weight in zip(INTERIOR, weights, strict=True):
        assert dial.weight(tau, 2.0) == pytest.approx(weight)
    assert dial.weight(0.15, 5.0) == pytest.approx((weights[2] + weights[3]) / 2)  # any rate: the file's own
    tau_map = np.array([[0.0, 0.1], [0.9, 1.0]], np.float32)
    np.testing.assert_allclose(dial.weight(tau_map, 2.0), [[1.0, weights[2]], [weights[-1], 0.0]], rtol=1e-6)


@pytest.fixture
def dial_model(tiny_gain_codec, monkeypatch) -> Model:
    """The default model's settings on a tiny module; the tests that use it stand in for the fit's metric."""
    monkeypatch.setattr("dpfusion.api.fit_unavailable", lambda: None)
    fusion = build_fusion(tiny_gain_codec.latent_channels, seed=3)
    return Model(tiny_gain_codec, fusion, NoiseSchedule(num_train_steps=100))


def test_compress_writes_the_fitted_dial_and_the_session_renders_with_it(dial_model, tiny_image, monkeypatch):
    fitted = decode_dial(bytes([254, 252, 250, 230, 200, 170, 140, 110, 80, 50, 20]))
    calls = []

    def fake_fit(image, base, real):
        calls.append((image.shape, tuple(base.shape), tuple(real.shape)))
        return fitted

    monkeypatch.setattr("dpfusion.api.fit_image_dial", fake_fit)
    data = dial_model.compress(tiny_image)
    assert len(calls) == 1 and unpack(data).dial == fitted
    session = dial_model.open(data)
    base, real = session.render_tensors([1.0, 0.0])
    for tau, weight in zip(INTERIOR, fitted, strict=True):
        expected = blend(base, real, weight)
        torch.testing.assert_close(session.render_tensors([tau])[0], expected, rtol=0, atol=1e-6)
    plain = dataclasses.replace(dial_model, image_dial=False).compress(tiny_image)
    assert unpack(plain).dial is None
    np.testing.assert_array_equal(dial_model.decompress(data, 1.0), dial_model.decompress(plain, 1.0))
    assert len(data) == len(plain) + 1 + len(INTERIOR)


def test_no_fit_without_the_dial_mode_a_fusion_module_or_when_switched_off(dial_model, tiny_gain_codec, monkeypatch):
    monkeypatch.setattr("dpfusion.api.fit_image_dial", lambda *a: pytest.fail("the sender fitted a dial"))
    assert not dataclasses.replace(dial_model, tau_mode="linear").fits_image_dial
    assert not dataclasses.replace(dial_model, image_dial=False).fits_image_dial
    assert not Model(tiny_gain_codec).fits_image_dial
    assert dial_model.fits_image_dial  # the default
    dataclasses.replace(dial_model, tau_mode="linear").check_image_dial()  # nothing to fit: nothing refused


def test_a_flat_fit_leaves_the_file_without_a_dial(dial_model, tiny_image, monkeypatch):
    monkeypatch.setattr("dpfusion.api.fit_image_dial", lambda *a: None)
    assert unpack(dial_model.compress(tiny_image)).dial is None


def test_the_sweep_tells_fitted_from_module_dials_apart(dial_model) -> None:
    plain = dataclasses.replace(dial_model, image_dial=False)
    assert model_signature(dial_model, (0.5,)) != model_signature(plain, (0.5,))
    assert model_signature(dial_model, (0.0, 1.0)) == model_signature(plain, (0.0, 1.0))  # the ends: no dial


def test_probe_weights_rise_from_zero_to_one() -> None:
    assert PROBE_WEIGHTS[0] == 0.0 and PROBE_WEIGHTS[-1] == 1.0 and np.all(np.diff(PROBE_WEIGHTS) > 0)


def test_without_lpips_weights_the_sender_refuses_before_encoding(dial_model, tiny_image, monkeypatch):
    """No silent fallback: a file without its dial would decode differently from the one asked for."""
    monkeypatch.setattr("dpfusion.api.fit_unavailable", lambda: "lpips_alex_v0.1.safetensors not in CACHE")
    monkeypatch.setattr("dpfusion.api.compress", lambda *a, **k: pytest.fail("encoded before refusing"))
    with pytest.raises(DPFusionError, match=r"per-image dial needs LPIPS-alex: .*not in CACHE.*--no-image-dial"):
        dial_model.compress(tiny_image)
