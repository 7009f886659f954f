"""The training noise schedule: T discrete steps and their cumulative alphas."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError


@dataclass(frozen=True)
class NoiseSchedule(Configurable):
    """Linear betas as in DDPM; ``alpha(t)`` is the cumulative product ``prod(1 - beta_s)``."""

    config_kind = "dpfusion.noise-schedule"

    num_train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 2e-2

    def __post_init__(self) -> None:
        if self.num_train_steps < 2:
            raise DPFusionError("a noise schedule needs at least 2 training steps")
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise DPFusionError(f"betas must satisfy 0 < start <= end < 1, got {self.beta_start}, {self.beta_end}")

    @property
    def alphas_cumprod(self) -> Tensor:
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_train_steps, dtype=torch.float64)
        return torch.cumprod(1.0 - betas, dim=0)

    def sampling_timesteps(self, steps: int) -> list[int]:
        """``steps`` evenly spaced timesteps from T - 1 down (trailing spacing: the first step sees pure noise)."""
        if not 1 <= steps <= self.num_train_steps:
            raise DPFusionError(f"steps must be in [1, {self.num_train_steps}], got {steps}")
        stride = self.num_train_steps / steps
        return [int(round((steps - 1 - i) * stride + stride - 1)) for i in range(steps)]
