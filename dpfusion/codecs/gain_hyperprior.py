"""Variable-rate mean-scale hyperprior with gain units (Cui et al., CVPR 2021).

One set of transforms serves every operating point: a learned per-channel gain
scales ``y`` before quantisation (a larger gain means a finer effective step) and
an inverse gain maps the quantised latent back to the domain ``g_s`` was trained
on. Interpolating two adjacent gain vectors geometrically gives continuous rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from compressai.models import MeanScaleHyperprior
from torch import Tensor, nn

from dpfusion.configs import Configurable, register_to_config
from dpfusion.errors import DPFusionError

DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)


class GainMeanScaleHyperprior(Configurable, MeanScaleHyperprior):
    """MeanScaleHyperprior whose rate is picked per call by a (fractional) rate index.

    ``rate`` is a float in ``[0, num_rates - 1]``; integer values are the trained
    operating points, fractions interpolate between them.
    """

    config_kind = "dpfusion.gain-hyperprior"

    @register_to_config
    def __init__(self, N: int = 128, M: int = 192, lambdas: Sequence[float] = DEFAULT_LAMBDAS):
        super().__init__(N=N, M=M)
        self.lambdas = tuple(float(v) for v in lambdas)
        if not self.lambdas or not all(0 < v < math.inf for v in self.lambdas):
            raise ValueError(f"lambdas must be one or more positive numbers, got {list(lambdas)}")
        self.register_to_config(lambdas=self.lambdas)
        mid = math.log(self.lambdas[len(self.lambdas) // 2])
        # Start the gains apart, roughly as high-rate theory suggests (step ~ 1/sqrt(lambda)).
        log_gain = torch.tensor([0.5 * (math.log(v) - mid) for v in self.lambdas])
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-log_gain[:, None].repeat(1, M))

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Schema 1 wrote ``N``, ``M`` and ``lambdas`` beside other keys (a stage name, the default rate),
        or, in a training run's ``config.json``, inside its ``stage``."""
        if "N" not in data and isinstance(data.get("stage"), dict):
            data = data["stage"]
        try:
            return {"N": int(data["N"]), "M": int(data["M"]), "lambdas": [float(v) for v in data["lambdas"]]}
        except (KeyError, TypeError, ValueError) as exc:
            raise DPFusionError(f"gain-hyperprior config lacks or mangles {exc}") from None

    @property
    def num_rates(self) -> int:
        return len(self.lambdas)

    def _check_rate(self, rate: float) -> float:
        rate = float(rate)
        if not (0.0 <= rate <= self.num_rates - 1) or math.isnan(rate):
            raise DPFusionError(f"rate index {rate} is outside [0, {self.num_rates - 1}]")
        return rate

    def gains(self, rate: float | Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain of shape (B or 1, M, 1, 1) for a scalar or per-sample rate."""
        if not torch.is_tensor(rate):
            rate = torch.tensor([self._check_rate(rate)])
        # float64, rounded once to float32: the gains (hence the latent g_s decodes) are then the
        # same on every device, whose float32 exp may differ in the last place.
        rate = rate.to(self.log_gain.device, torch.float64).reshape(-1)
        low = rate.floor().long().clamp(max=self.num_rates - 2)
        frac = (rate - low.to(rate.dtype))[:, None]
        log_g = (1 - frac) * self.log_gain[low].double() + frac * self.log_gain[low + 1].double()
        log_ig = (1 - frac) * self.log_inv_gain[low].double() + frac * self.log_inv_gain[low + 1].double()
        dtype = self.log_gain.dtype
        return log_g.exp().to(dtype)[:, :, None, None], log_ig.exp().to(dtype)[:, :, None, None]

    def forward(self, x: Tensor, rate: float | Tensor = 0.0) -> dict:
        gain, inv_gain = self.gains(rate)
        y = self.g_a(x) * gain
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales_hat, means=means_hat)
        x_hat = self.g_s(y_hat * inv_gain)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def compress(self, x: Tensor, rate: float = 0.0) -> dict:
        gain, _ = self.gains(rate)
        y = self.g_a(x) * gain
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means_hat)
        return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}

    def decompress(self, strings: list, shape: Sequence[int], rate: float = 0.0) -> dict:
        _, inv_gain = self.gains(rate)
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_hat = self.gaussian_conditional.decompress(strings[0], indexes, means=means_hat)
        x_hat = self.g_s(y_hat * inv_gain).clamp_(0, 1)
        return {"x_hat": x_hat}
