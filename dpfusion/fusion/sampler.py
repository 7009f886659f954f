"""tau-controlled DDIM over latents (the paper's eqs. 3-4).

``TauDDIMSampler.step`` is stateless: given the model's latent prediction at one
timestep it returns the sample at the next. ``sample`` runs the whole loop with
k-diffusion's calling convention ``sample(model, noise, ...)``. The final step
goes to alpha = 1, so with ``tau = 1`` the result is ``y_hat`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dpfusion.fusion.schedule import NoiseSchedule

Denoiser = Callable[[Tensor, float], Tensor]
"""``model(sample, t_over_T) -> predicted clean latent``, conditioning already bound."""


def tau_ddim_step(
    denoised: Tensor, sample: Tensor, condition: Tensor, alpha: float, alpha_prev: float, tau: Tensor | float
) -> Tensor:
    """One step of eq. 4: fuse the prediction with ``condition`` by ``tau`` and re-noise deterministically."""
    eps = (sample - alpha**0.5 * denoised) / (1.0 - alpha) ** 0.5
    keep = tau * tau if torch.is_tensor(tau) else float(tau) ** 2
    fused = (1.0 - keep) * denoised + keep * condition
    return alpha_prev**0.5 * fused + (1.0 - keep) * (1.0 - alpha_prev) ** 0.5 * eps


class TauDDIMSampler:
    """Holds only the schedule and step count: one instance serves every image and tau."""

    name = "ddim"

    def __init__(self, schedule: NoiseSchedule, steps: int):
        self.schedule = schedule
        self.steps = steps
        self.timesteps = schedule.sampling_timesteps(steps)
        alphas = schedule.alphas_cumprod
        self.alphas = [float(alphas[t]) for t in self.timesteps]
        self.alphas_prev = self.alphas[1:] + [1.0]

    def t_fraction(self, index: int) -> float:
        return self.timesteps[index] / self.schedule.num_train_steps

    def step(self, denoised: Tensor, index: int, sample: Tensor, condition: Tensor, tau: Tensor | float) -> Tensor:
        return tau_ddim_step(denoised, sample, condition, self.alphas[index], self.alphas_prev[index], tau)

    def sample(
        self,
        model: Denoiser,
        noise: Tensor,
        condition: Tensor,
        tau: Tensor | float,
        callback: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """Run all steps from ``noise`` (the y_T draw); ``tau`` broadcasts against the latent.
        ``callback(done, total)`` after each step."""
        sample = noise
        total = len(self.timesteps)
        for index in range(total):
            denoised = model(sample, self.t_fraction(index))
            sample = self.step(denoised, index, sample, condition, tau)
            if callback is not None:
                callback(index + 1, total)
        return sample
