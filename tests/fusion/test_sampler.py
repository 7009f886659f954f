"""The tau-DDIM sampler (paper eqs. 3-4), checked against the equations written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.fusion.sampler import TauDDIMSampler, tau_ddim_step
from dpfusion.fusion.schedule import NoiseSchedule

torch.set_num_threads(1)


def _eq4(denoised, sample, condition, alpha, alpha_prev, tau):
    """Eq. 4 in float64 numpy, element by element, straight from the paper."""
    d, y, c = (np.asarray(v, dtype=np.float64) for v in (denoised, sample, condition))
    tau = np.asarray(tau, dtype=np.float64)
    eps = (y - math.sqrt(alpha) * d) / math.sqrt(1.0 - alpha)
    return (
        math.sqrt(alpha_prev) * ((1.0 - tau**2) * d + tau**2 * c) + (1.0 - tau**2) * math.sqrt(1.0 - alpha_prev) * eps
    )


def _tensors(seed: int, shape=(2, 5, 3, 4)):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(3)]


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.5, 0.8, 1.0])
@pytest.mark.parametrize(("alpha", "alpha_prev"), [(0.01, 0.05), (0.5, 0.7), (0.9, 1.0), (4e-5, 0.999)])
def test_step_matches_equation_4(tau, alpha, alpha_prev):
    denoised, sample, condition = _tensors(0)
    got = tau_ddim_step(denoised, sample, condition, alpha, alpha_prev, tau)
    expected = _eq4(denoised.numpy(), sample.numpy(), condition.numpy(), alpha, alpha_prev, tau)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-4)
    # tau given as a tensor (a map broadcast over the latent) is the same step.
    as_tensor = tau_ddim_step(denoised, sample, condition, alpha, alpha_prev, torch.full((1, 1, 1, 1), tau))
    torch.testing.assert_close(as_tensor, got, rtol=0, atol=1e-6)


def test_step_with_a_tau_map_matches_equation_4():
    denoised, sample, condition = _tensors(1)
    tau = torch.rand(2, 1, 3, 4, generator=torch.Generator().manual_seed(9))
    got = tau_ddim_step(denoised, sample, condition, 0.3, 0.6, tau)
    expected = _eq4(denoised.numpy(), sample.numpy(), condition.numpy(), 0.3, 0.6, tau.numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("alpha", "alpha_prev"), [(0.02, 0.2), (0.6, 0.95)])
def test_tau_zero_is_plain_ddim_with_x0_prediction(alpha, alpha_prev):
    """eta = 0 DDIM: an oracle x0 prediction moves x_t = sqrt(a) x0 + sqrt(1-a) e to the same e at alpha_prev."""
    x0, e, condition = _tensors(2)
    x_t = math.sqrt(alpha) * x0 + math.sqrt(1 - alpha) * e
    got = tau_ddim_step(x0, x_t, condition, alpha, alpha_prev, 0.0)
    torch.testing.assert_close(got, math.sqrt(alpha_prev) * x0 + math.sqrt(1 - alpha_prev) * e, rtol=1e-5, atol=1e-5)
    # ... and the condition plays no part at tau = 0.
    assert torch.equal(got, tau_ddim_step(x0, x_t, condition * 7 + 3, alpha, alpha_prev, 0.0))


def test_tau_one_returns_the_condition_at_the_last_step_exactly():
    denoised, sample, condition = _tensors(3)
    assert torch.equal(tau_ddim_step(denoised, sample, condition, 0.7, 1.0, 1.0), condition)
    assert torch.equal(tau_ddim_step(denoised, sample, condition, 0.7, 1.0, torch.ones(2, 1, 3, 4)), condition)


def test_sampler_alphas_and_last_step():
    schedule = NoiseSchedule(num_train_steps=200)
    sampler = TauDDIMSampler(schedule, 7)
    alphas = schedule.alphas_cumprod
    assert sampler.timesteps == schedule.sampling_timesteps(7)
    assert sampler.alphas == [float(alphas[t]) for t in sampler.timesteps]
    assert sampler.alphas_prev[:-1] == sampler.alphas[1:]
    assert sampler.alphas_prev[-1] == 1.0  # the last step lands on the clean latent
    assert [sampler.t_fraction(i) for i in range(7)] == [t / 200 for t in sampler.timesteps]


@pytest.mark.parametrize("steps", [0, -3, 201])
def test_invalid_steps_raise(steps):
    with pytest.raises(DPFusionError):
        TauDDIMSampler(NoiseSchedule(num_train_steps=200), steps)


def _random_model(fusion, condition):
    """A denoiser built from a randomised fusion network: its prediction is far from the condition."""

    def model(sample, t_fraction):
        return fusion(sample, condition, t_fraction)

    return model


def test_sample_calls_the_model_from_noisiest_to_cleanest(fusion_factory):
    schedule = NoiseSchedule(num_train_steps=100)
    sampler = TauDDIMSampler(schedule, 5)
    seen = []

    def model(sample, t_fraction):
        seen.append(t_fraction)
        return sample * 0.5

    noise, condition, _ = _tensors(4, (1, 5, 3, 4))
    sampler.sample(model, noise, condition, 0.3)
    assert seen == [t / 100 for t in schedule.sampling_timesteps(5)]
    assert seen == sorted(seen, reverse=True) and seen[0] == 0.99


def test_sample_at_tau_one_is_the_condition_bit_for_bit(fusion_factory):
    """The formula itself (not the shortcut in fuse_latents) returns y_hat exactly at tau = 1."""
    fusion = fusion_factory(5, seed=3)
    noise, condition, _ = _tensors(5, (3, 5, 3, 4))
    model = _random_model(fusion, condition)
    assert (model(noise, 0.5) - condition).abs().max() > 0.1  # the network's prediction is not y_hat
    for steps in (1, 3, 10):
        sampler = TauDDIMSampler(NoiseSchedule(num_train_steps=100), steps)
        assert torch.equal(sampler.sample(model, noise, condition, torch.ones(3, 1, 3, 4)), condition)
        assert torch.equal(sampler.sample(model, noise, condition, 1.0), condition)
        assert not torch.allclose(sampler.sample(model, noise, condition, 0.0), condition)


def test_sample_with_a_partial_tau_map_keeps_y_hat_where_tau_is_one(fusion_factory):
    fusion = fusion_factory(5, seed=4)
    noise, condition, _ = _tensors(6, (1, 5, 4, 6))
    tau = torch.zeros(1, 1, 4, 6)
    tau[..., :, :3] = 1.0  # left half: fidelity
    tau[..., 0, 3:] = 0.5
    out = TauDDIMSampler(NoiseSchedule(num_train_steps=100), 10).sample(
        _random_model(fusion, condition), noise, condition, tau
    )
    assert torch.equal(out[..., :3], condition[..., :3])
    assert (out[..., 1:, 3:] - condition[..., 1:, 3:]).abs().amin(dim=(0, 1)).min() > 0  # every other position moves
    assert not torch.allclose(out[..., 0, 3:], condition[..., 0, 3:])


def test_sample_at_tau_zero_ends_on_the_last_prediction(fusion_factory):
    fusion = fusion_factory(5, seed=5)
    noise, condition, _ = _tensors(7, (1, 5, 3, 3))
    predictions = []
    model = _random_model(fusion, condition)

    def recording(sample, t_fraction):
        predictions.append(model(sample, t_fraction))
        return predictions[-1]

    out = TauDDIMSampler(NoiseSchedule(num_train_steps=100), 4).sample(recording, noise, condition, 0.0)
    assert torch.equal(out, predictions[-1])  # alpha_prev = 1: the sample is the clean prediction


def test_per_sample_taus_equal_separate_runs(fusion_factory):
    fusion = fusion_factory(5, seed=6)
    noise, condition, _ = _tensors(8, (1, 5, 3, 4))
    sampler = TauDDIMSampler(NoiseSchedule(num_train_steps=100), 6)
    taus = [0.0, 0.5, 0.9]
    model = _random_model(fusion, condition)
    batched = sampler.sample(
        model, noise.expand(3, -1, -1, -1).contiguous(), condition, torch.tensor(taus).view(3, 1, 1, 1)
    )
    for i, tau in enumerate(taus):
        torch.testing.assert_close(batched[i : i + 1], sampler.sample(model, noise, condition, tau), rtol=0, atol=1e-5)
