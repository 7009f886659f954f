"""Stage 2: the fusion network, trained with the paper's eq. 2, codec and auxiliary encoder frozen.

For a crop x: ``y_hat`` is the codec's quantised latent, ``y_bar`` the auxiliary
encoder's. With t ~ U{0..T-1} and ``y_t = sqrt(a_t) y_hat + sqrt(1 - a_t) eps``
(in normalised units), the loss is
``latent_weight * ||y_bar - D(y_t, y_hat, t/T)||^2 + L_perc(x, g_s(D(...)))``.
With a synthesis adapter (beyond the paper) ``g_s`` runs with its blocks at full
strength (tau = 0), and ``image_mse_weight * ||x - x_rec||^2`` keeps the PSNR cost in check.
With ``adversarial_weight > 0`` a conditional patch critic (``train.discriminator``) adds
``adversarial_weight * softplus(-D(x_rec, y_hat))``, the distribution-level term that lets
the tau = 0 decode commit to a texture instead of averaging (beyond the paper, as in HiFiC).
With ``texture_weight > 0`` ``texture_weight * SW(x_rec, x)`` (``train.texture``) asks for the
original's feature statistics instead, a distribution term with no second player to train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.train.aux_stage import sample_rates
from dpfusion.train.discriminator import PatchDiscriminator, critic_loss, generator_loss
from dpfusion.train.loop import TrainingStage
from dpfusion.train.texture import TextureLoss


@torch.no_grad()
def measure_latent_scale(codec: CodecAdapter, batches: list[Tensor]) -> Tensor:
    """Per-channel standard deviation of ``y_hat`` over some training crops (never below 1e-3)."""
    latents = torch.cat([codec.training_latent(b, sample_rates(codec, b)) for b in batches])
    return latents.transpose(0, 1).flatten(1).std(dim=1).clamp_min(1e-3)


LATENT_WEIGHT = 0.01
"""Eq. 2's lambda. 0.1 pulled the module towards ``y_bar`` harder than LPIPS pays for: measured on
the default codec, 0.01 gained a point or two of LPIPS BD-rate (docs/METHOD.md, stage 2). A
fine-tuning that overshoots at low rates (tau = 0.3 beating tau = 0) needs the stronger pull back:
the shipped module's last 2,500 steps used 0.1, then 0.2."""


@dataclass(frozen=True)
class FusionTraining(Configurable):
    """What a fusion run trains: the network's document, its schedule, the codec it is for, the loss weights."""

    config_kind = "dpfusion.fusion-training"
    config_parts = {"schedule": NoiseSchedule}

    base: dict[str, str]
    fusion: dict[str, Any]
    schedule: NoiseSchedule
    latent_weight: float = LATENT_WEIGHT
    image_mse_weight: float = 0.0
    adversarial_weight: float = 0.0
    init: dict[str, str] | None = None
    """The trained module it started from (``--init``): its folder and weights digest."""
    texture_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fusion", LatentFusion.as_document(self.fusion, "fusion network"))

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Schema 1 was the stage's description: the same keys, bare parts, and ``"stage": "fusion"``."""
        return super().legacy_config({key: value for key, value in data.items() if key != "stage"})


class FusionStage(TrainingStage):
    def __init__(
        self,
        codec: CodecAdapter,
        aux_encoder: nn.Module | None,
        fusion: LatentFusion,
        schedule: NoiseSchedule,
        perceptual: nn.Module,
        latent_weight: float = LATENT_WEIGHT,
        init: dict[str, str] | None = None,
        image_mse_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        texture_weight: float = 0.0,
    ):
        super().__init__()
        self.direct = fusion.sampling == "direct"
        if self.direct and aux_encoder is not None:
            raise DPFusionError("the direct variant trains without an auxiliary encoder")
        if not self.direct and aux_encoder is None and latent_weight != 0:
            raise DPFusionError("ddim fusion with a latent weight needs an auxiliary encoder (its target y_bar)")
        self.codec = codec
        self.base = codec.model
        self.aux = aux_encoder.eval() if aux_encoder is not None else None
        if self.aux is not None:
            for param in self.aux.parameters():
                param.requires_grad_(False)
        self.fusion = fusion
        self.trainable = fusion
        self.stride = codec.stride
        self.schedule = schedule
        self.register_buffer("alphas", schedule.alphas_cumprod.float(), persistent=False)
        self.perceptual = perceptual
        self.latent_weight = latent_weight
        self.image_mse_weight = image_mse_weight
        self.adversarial_weight = adversarial_weight
        if adversarial_weight < 0:
            raise DPFusionError(f"the adversarial weight must be >= 0, got {adversarial_weight}")
        self.critic = PatchDiscriminator(codec.latent_channels) if adversarial_weight > 0 else None
        if texture_weight < 0:
            raise DPFusionError(f"the texture weight must be >= 0, got {texture_weight}")
        self.texture_weight = texture_weight
        self.texture = TextureLoss() if texture_weight > 0 else None
        self._last: tuple[Tensor, Tensor, Tensor] | None = None
        self.init = init

    def train(self, mode: bool = True) -> FusionStage:
        """Only the fusion network trains; the codec and auxiliary encoder stay in eval mode."""
        super().train(mode)
        self.base.eval()
        if self.aux is not None:
            self.aux.eval()
        return self

    def forward(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        rates = sample_rates(self.codec, batch)
        y_hat = self.codec.training_latent(batch, rates)
        y_hat_n = self.fusion.normalize(y_hat)
        if self.direct:  # Variant-1: one pass from y_hat, perceptual loss only
            pred_n = self.fusion(y_hat_n, y_hat_n, torch.zeros(batch.shape[0], device=batch.device))
            latent_loss = torch.zeros((), device=batch.device)
        else:
            t = torch.randint(self.schedule.num_train_steps, (batch.shape[0],), device=batch.device)
            alpha = self.alphas[t][:, None, None, None]
            y_t = alpha.sqrt() * y_hat_n + (1 - alpha).sqrt() * torch.randn_like(y_hat_n)
            pred_n = self.fusion(y_t, y_hat_n, t.float() / self.schedule.num_train_steps)
            latent_loss = self._latent_loss(batch, rates, pred_n)
        fused = self.fusion.fused_latent(y_hat, pred_n, y_hat_n)
        adapter = self.fusion.adapter
        x_rec = self.base.g_s(fused) if adapter is None else adapter(self.base.g_s, fused, 1.0)
        perc = self.perceptual(x_rec, batch)
        image_mse = (x_rec - batch).pow(2).mean()
        loss = self.latent_weight * latent_loss + perc + self.image_mse_weight * image_mse
        logs = {"latent_mse": latent_loss.detach(), "perceptual": perc.detach(), "image_mse": image_mse.detach()}
        if self.texture is not None:
            texture = self.texture(x_rec, batch)
            loss = loss + self.texture_weight * texture
            logs["texture"] = texture.detach()
        if self.critic is not None:
            adversarial = self._adversarial(batch, x_rec, y_hat_n)
            loss = loss + self.adversarial_weight * adversarial
            logs["adversarial"] = adversarial.detach()
        return loss, logs

    def _latent_loss(self, batch: Tensor, rates: Tensor, pred_n: Tensor) -> Tensor:
        """Eq. 2's pull towards the auxiliary latent; none when the run has no auxiliary encoder (weight 0)."""
        if self.aux is None:
            return torch.zeros((), device=batch.device)
        y_bar_n = self.fusion.normalize(self.codec.training_latent(batch, rates, analysis=self.aux))
        return (pred_n - y_bar_n).pow(2).mean()

    def _adversarial(self, batch: Tensor, x_rec: Tensor, y_hat_n: Tensor) -> Tensor:
        """The decoder's GAN loss; the critic's weights get no gradient from it (they have their own step)."""
        self._last = (batch, x_rec.detach(), y_hat_n.detach())
        self.critic.requires_grad_(False)
        try:
            return generator_loss(self.critic(x_rec, y_hat_n.detach()))
        finally:
            self.critic.requires_grad_(True)

    def critic_loss(self) -> tuple[Tensor, dict[str, Tensor]]:
        if self._last is None:
            raise DPFusionError("critic_loss needs a forward pass first")
        real, fake, latent = self._last
        real_logits, fake_logits = self.critic(real, latent), self.critic(fake, latent)
        logs = {"critic_real": real_logits.detach().mean(), "critic_fake": fake_logits.detach().mean()}
        return critic_loss(real_logits, fake_logits), logs

    def stage_config(self) -> FusionTraining:
        return FusionTraining(
            self.codec.identity(),
            self.fusion.document(),
            self.schedule,
            self.latent_weight,
            self.image_mse_weight,
            self.adversarial_weight,
            self.init,
            self.texture_weight,
        )
