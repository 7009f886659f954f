"""Stage 0: rate-distortion training of the variable-rate base codec.

Each crop in a batch gets its own random rate index, so every step trains every
operating point a little: loss = mean_i(lambda_{r_i} * 255^2 * MSE_i + bpp_i).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.train.loop import TrainConfig, TrainingStage

QUANTILE_LR_SCALE = 10.0
"""The entropy bottleneck's quantiles only track the latent's range; they may move faster."""


def bits_per_pixel(likelihoods: dict[str, Tensor], pixels: int) -> Tensor:
    """Per-sample rate from the training-time likelihoods."""
    total = sum(lik.clamp_min(1e-9).log2().flatten(1).sum(1) for lik in likelihoods.values())
    return -total / pixels


class BaseCodecStage(TrainingStage):
    def __init__(self, codec: GainMeanScaleHyperprior):
        super().__init__()
        self.codec = codec
        self.trainable = codec
        self.stride = int(codec.downsampling_factor)

    def param_groups(self, config: TrainConfig) -> list[dict[str, Any]]:
        quantiles = [p for n, p in self.codec.named_parameters() if n.endswith("quantiles")]
        main = [p for n, p in self.codec.named_parameters() if not n.endswith("quantiles")]
        return [
            {"params": main, "weight_decay": config.weight_decay},
            {"params": quantiles, "weight_decay": 0.0, "lr_scale": QUANTILE_LR_SCALE},
        ]

    def forward(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        rates = torch.randint(self.codec.num_rates, (batch.shape[0],), device=batch.device)
        out = self.codec(batch, rates.float())
        mse = (out["x_hat"] - batch).pow(2).flatten(1).mean(1)
        bpp = bits_per_pixel(out["likelihoods"], batch.shape[-2] * batch.shape[-1])
        lambdas = torch.tensor(self.codec.lambdas, device=batch.device)[rates]
        rd = (lambdas * 255.0**2 * mse + bpp).mean()
        aux = self.codec.aux_loss()
        psnr = -10 * torch.log10(mse.clamp_min(1e-10))
        return rd + aux, {
            "rd": rd.detach(),
            "bpp": bpp.mean().detach(),
            "psnr": psnr.mean().detach(),
            "aux": aux.detach(),
        }

    def stage_config(self) -> GainMeanScaleHyperprior:
        return self.codec
