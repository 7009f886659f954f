"""Samplers that run the fusion network once: the paper's Variant 1 and the one-prediction x0 decoder.

Both keep the calling convention of :class:`~dpfusion.fusion.sampler.TauDDIMSampler`
(``sample(model, noise, condition, tau, callback)``) and its tau weights, ``keep = tau^2``, so at
tau = 1 they return ``condition`` (the normalised ``y_hat``) exactly.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from dpfusion.fusion.sampler import Denoiser
from dpfusion.fusion.schedule import NoiseSchedule


def _fuse(prediction: Tensor, condition: Tensor, tau: Tensor | float) -> Tensor:
    keep = tau * tau
    return (1.0 - keep) * prediction + keep * condition


class DirectSampler:
    """Variant 1 of the paper: no diffusion, one pass of the network on ``y_hat`` at t = 0; ``noise``
    and ``steps`` play no part. The sampler of modules trained with ``sampling = "direct"``."""

    name = "direct"

    def __init__(self, schedule: NoiseSchedule, steps: int = 1):
        schedule.sampling_timesteps(steps)  # the same range of steps as every sampler
        self.schedule = schedule
        self.steps = steps

    def sample(
        self,
        model: Denoiser,
        noise: Tensor,
        condition: Tensor,
        tau: Tensor | float,
        callback: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        prediction = model(condition.expand_as(noise), 0.0)
        if callback is not None:
            callback(1, 1)
        return _fuse(prediction, condition, tau)


class X0Sampler:
    """One clean-latent prediction from the noise at the first timestep, fused by tau: the 1-step decoder.

    The fusion network predicts the clean latent directly and its output barely depends on the
    step count (docs/METHOD.md), so one prediction is the decode; it equals tau-DDIM at one step
    bit for bit (the last DDIM step goes to alpha = 1, which leaves exactly this), whatever
    ``steps`` says.
    """

    name = "x0"

    def __init__(self, schedule: NoiseSchedule, steps: int = 1):
        self.schedule = schedule
        self.steps = steps
        schedule.sampling_timesteps(steps)
        self.t_fraction = schedule.sampling_timesteps(1)[0] / schedule.num_train_steps

    def sample(
        self,
        model: Denoiser,
        noise: Tensor,
        condition: Tensor,
        tau: Tensor | float,
        callback: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        prediction = model(noise, self.t_fraction)
        if callback is not None:
            callback(1, 1)
        return _fuse(prediction, condition, tau)
