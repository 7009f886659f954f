"""Gain units: rate validation, exact gains at the trained points, geometric interpolation between them."""

from __future__ import annotations

import math

import pytest
import torch

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.gain_hyperprior import DEFAULT_LAMBDAS, GainMeanScaleHyperprior
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor


@pytest.mark.parametrize("rate", [-1.0, -1e-6, 3.0001, 4.0, 100.0, float("nan"), float("inf"), float("-inf")])
def test_rate_outside_range_is_refused(tiny_gain_model: GainMeanScaleHyperprior, rate: float) -> None:
    assert tiny_gain_model.num_rates == 4
    with pytest.raises(DPFusionError, match="rate index"):
        tiny_gain_model.gains(rate)
    with pytest.raises(DPFusionError, match="rate index"):
        CodecAdapter(tiny_gain_model, "gain-hyperprior", rate)


@pytest.mark.parametrize("rate", [0, 1, 2, 3])
def test_gains_at_integer_rates_are_the_stored_vectors(tiny_gain_model: GainMeanScaleHyperprior, rate: int) -> None:
    with torch.no_grad():
        tiny_gain_model.log_gain.normal_()
        tiny_gain_model.log_inv_gain.normal_()
    gain, inv_gain = tiny_gain_model.gains(float(rate))
    assert gain.shape == inv_gain.shape == (1, tiny_gain_model.M, 1, 1)
    # exp in float64, rounded once: the same float32 gains on every device.
    assert torch.equal(gain.flatten(), tiny_gain_model.log_gain[rate].double().exp().float())
    assert torch.equal(inv_gain.flatten(), tiny_gain_model.log_inv_gain[rate].double().exp().float())


@pytest.mark.parametrize("rate", [0.25, 1.5, 2.9])
def test_fractional_rate_interpolates_geometrically(tiny_gain_model: GainMeanScaleHyperprior, rate: float) -> None:
    with torch.no_grad():
        tiny_gain_model.log_gain.normal_()
        tiny_gain_model.log_inv_gain.normal_()
    low, frac = math.floor(rate), rate - math.floor(rate)
    stored = tiny_gain_model.log_gain.detach().exp()
    stored_inv = tiny_gain_model.log_inv_gain.detach().exp()
    gain, inv_gain = tiny_gain_model.gains(rate)
    expected = stored[low] ** (1 - frac) * stored[low + 1] ** frac
    expected_inv = stored_inv[low] ** (1 - frac) * stored_inv[low + 1] ** frac
    torch.testing.assert_close(gain.flatten(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(inv_gain.flatten(), expected_inv, rtol=1e-5, atol=0)
    # Geometric, not arithmetic: the arithmetic mean would be different for these random gains.
    arithmetic = (1 - frac) * stored[low] + frac * stored[low + 1]
    assert not torch.allclose(gain.flatten(), arithmetic, rtol=1e-3)


def test_per_sample_rates(tiny_gain_model: GainMeanScaleHyperprior) -> None:
    rates = torch.tensor([0.0, 1.5, 3.0])
    gain, inv_gain = tiny_gain_model.gains(rates)
    assert gain.shape == (3, tiny_gain_model.M, 1, 1)
    for i, rate in enumerate(rates.tolist()):
        assert torch.allclose(gain[i], tiny_gain_model.gains(rate)[0][0])
    out = tiny_gain_model(torch.rand(3, 3, 64, 64), rates)
    assert out["x_hat"].shape == (3, 3, 64, 64)


def test_gains_are_ordered_by_rate_at_init(tiny_gain_model: GainMeanScaleHyperprior) -> None:
    """A higher rate index must mean a finer quantiser: larger gain, smaller inverse gain."""
    points = torch.linspace(0, tiny_gain_model.num_rates - 1, 13)
    gains = torch.stack([tiny_gain_model.gains(float(r))[0].flatten() for r in points])
    inv_gains = torch.stack([tiny_gain_model.gains(float(r))[1].flatten() for r in points])
    assert (gains[1:] > gains[:-1]).all()
    assert (inv_gains[1:] < inv_gains[:-1]).all()
    torch.testing.assert_close(gains * inv_gains, torch.ones_like(gains))
    # Step ~ 1 / sqrt(lambda): the gain ratio of the extreme points follows the lambdas.
    lambdas = tiny_gain_model.lambdas
    ratio = (gains[-1] / gains[0]).mean().item()
    assert ratio == pytest.approx(math.sqrt(lambdas[-1] / lambdas[0]), rel=1e-4)


def test_default_model_has_six_rates() -> None:
    model = GainMeanScaleHyperprior(8, 12)
    assert model.num_rates == len(DEFAULT_LAMBDAS) == 6
    assert model.log_gain.shape == model.log_inv_gain.shape == (6, 12)


@pytest.mark.parametrize("lambdas", [(), (0.01, -0.02), (0.01, 0.0), (0.01, float("nan"))])
def test_invalid_lambdas_are_refused(lambdas: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="lambdas"):
        GainMeanScaleHyperprior(8, 12, lambdas=lambdas)


def test_higher_rate_index_spends_more_bits(tiny_gain_model: GainMeanScaleHyperprior, tiny_image) -> None:
    """At init the gains alone make the quantiser finer: bits grow with the rate index on a fixed image."""
    x = to_tensor(tiny_image)
    sizes = []
    for rate in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        codec = CodecAdapter(tiny_gain_model, "gain-hyperprior", rate)
        sizes.append(len(codec.encode(x).strings[0]))
    assert all(a < b for a, b in zip(sizes, sizes[1:], strict=False)), sizes
