"""Stage 1: the auxiliary encoder ``g_a'``, trained through the frozen codec for perceptual quality.

``g_a'`` starts as a copy of ``g_a``. The codec runs in training mode so that its
(frozen) entropy models give the noise-proxy likelihoods: with hard rounding the
rate has no gradient and the latent's rate drifts without bound.
Loss = perceptual + rate_weight * bpp + mse_weight * MSE.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.configs import Configurable
from dpfusion.train.base_stage import bits_per_pixel
from dpfusion.train.loop import TrainingStage


def sample_rates(codec: CodecAdapter, batch: Tensor) -> Tensor | None:
    """Uniform continuous rate indices for variable-rate codecs: every operating point gets trained."""
    if not codec.variable_rate:
        return None
    return torch.rand(batch.shape[0], device=batch.device) * (codec.model.num_rates - 1)


RATE_WEIGHT = 0.0  # measured on the trained base: a rate term makes the target decode worse (docs/METHOD.md)
MSE_WEIGHT = 30.0


@dataclass(frozen=True)
class AuxEncoderConfig(Configurable):
    """``aux.json``: the codec whose ``g_a`` the encoder replaces (by fingerprint) and the loss it was trained with."""

    config_kind = "dpfusion.aux-encoder"

    base: dict[str, str]
    rate_weight: float = RATE_WEIGHT
    mse_weight: float = MSE_WEIGHT

    def __post_init__(self) -> None:
        if not isinstance(self.base, dict) or not isinstance(self.base.get("fingerprint"), str):
            raise ValueError("base must name the codec and its weights fingerprint")

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Schema 1 was the stage's description: the same keys and ``"stage": "aux"``."""
        return {key: value for key, value in data.items() if key != "stage"}


class AuxEncoderStage(TrainingStage):
    def __init__(
        self,
        codec: CodecAdapter,
        perceptual: nn.Module,
        rate_weight: float = RATE_WEIGHT,
        mse_weight: float = MSE_WEIGHT,
    ):
        super().__init__()
        self.codec = codec
        self.base = codec.model
        self.aux = copy.deepcopy(codec.model.g_a)
        for param in self.aux.parameters():
            param.requires_grad_(True)
        self.trainable = self.aux
        self.stride = codec.stride
        self.perceptual = perceptual
        self.rate_weight = rate_weight
        self.mse_weight = mse_weight

    def forward(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        rates = sample_rates(self.codec, batch)
        with self.codec.swapped_analysis(self.aux) as coder:
            out = coder.model(batch, **self.codec.rate_kwargs(rates))
        x_hat = out["x_hat"]
        perc = self.perceptual(x_hat, batch)
        bpp = bits_per_pixel(out["likelihoods"], batch.shape[-2] * batch.shape[-1]).mean()
        mse = (x_hat - batch).pow(2).mean()
        loss = perc + self.rate_weight * bpp + self.mse_weight * mse
        return loss, {"perceptual": perc.detach(), "bpp": bpp.detach(), "mse": mse.detach()}

    def stage_config(self) -> AuxEncoderConfig:
        return AuxEncoderConfig(self.codec.identity(), self.rate_weight, self.mse_weight)
