"""The training noise schedule and the sampling timesteps derived from it."""

from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.fusion.schedule import NoiseSchedule


def test_alphas_are_the_cumulative_product_of_linear_betas():
    schedule = NoiseSchedule(num_train_steps=1000, beta_start=1e-4, beta_end=2e-2)
    alphas = schedule.alphas_cumprod
    assert alphas.shape == (1000,) and alphas.dtype == torch.float64
    # Written out independently: a_t = prod_{s<=t} (1 - beta_s), beta linear from start to end.
    expected, running = [], 1.0
    for s in range(1000):
        running *= 1.0 - (1e-4 + (2e-2 - 1e-4) * s / 999)
        expected.append(running)
    torch.testing.assert_close(alphas, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    assert alphas[0] == pytest.approx(1 - 1e-4)
    assert bool((alphas[1:] < alphas[:-1]).all())
    assert 0 < float(alphas[-1]) < 1e-4  # nearly pure noise at t = T - 1 for the default schedule


@pytest.mark.parametrize("num_train_steps", [2, 7, 50, 1000])
def test_sampling_timesteps(num_train_steps):
    schedule = NoiseSchedule(num_train_steps=num_train_steps)
    candidates = {1, 2, 3, 10, num_train_steps // 2, num_train_steps - 1, num_train_steps}
    for steps in sorted(s for s in candidates if 1 <= s <= num_train_steps):
        timesteps = schedule.sampling_timesteps(steps)
        assert len(timesteps) == steps
        assert timesteps[0] == num_train_steps - 1  # the first step sees the noisiest timestep
        assert all(a > b for a, b in zip(timesteps, timesteps[1:], strict=False))
        assert all(isinstance(t, int) and 0 <= t < num_train_steps for t in timesteps)
    assert schedule.sampling_timesteps(num_train_steps) == list(range(num_train_steps - 1, -1, -1))


def test_ten_steps_of_a_thousand_are_evenly_spaced():
    assert NoiseSchedule().sampling_timesteps(10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]


@pytest.mark.parametrize("steps", [0, -1, 1001, 10_000])
def test_invalid_step_counts_raise(steps):
    with pytest.raises(DPFusionError, match="steps"):
        NoiseSchedule().sampling_timesteps(steps)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_train_steps": 1},
        {"num_train_steps": 0},
        {"beta_start": 0.0},
        {"beta_start": 0.1, "beta_end": 0.01},
        {"beta_end": 1.0},
    ],
)
def test_invalid_schedules_raise(kwargs):
    with pytest.raises(DPFusionError):
        NoiseSchedule(**kwargs)


def test_round_trip_through_a_dict():
    schedule = NoiseSchedule(num_train_steps=123, beta_start=2e-4, beta_end=3e-2)
    assert NoiseSchedule.from_document(schedule.document()) == schedule
