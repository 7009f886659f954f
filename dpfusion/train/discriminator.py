"""A conditional patch discriminator: the distribution-level term that an LPIPS regression lacks.

LPIPS and MSE reward the average of all plausible textures, which is a blur; a critic that
tells real crops from decoded ones rewards committing to one plausible texture. As in HiFiC
(Mentzer et al. 2020) the critic sees the latent the decoder was given (upsampled beside the
image), so it judges "is this a real image *for this bitstream*" and cannot be satisfied by
texture that ignores the content. Spectral normalisation keeps it Lipschitz at batch sizes
of two, where batch statistics would be noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

CONDITION_CHANNELS = 12


class PatchDiscriminator(nn.Module):
    """Image (B, 3, H, W) and its latent (B, C, H/s, W/s) -> logits on a grid of overlapping patches."""

    def __init__(self, latent_channels: int, width: int = 32):
        super().__init__()
        self.condition = spectral_norm(nn.Conv2d(latent_channels, CONDITION_CHANNELS, 3, padding=1))
        widths = (3 + CONDITION_CHANNELS, width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        layers += [
            spectral_norm(nn.Conv2d(widths[-1], widths[-1], 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(widths[-1], 1, 3, padding=1)),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, image: Tensor, latent: Tensor) -> Tensor:
        condition = F.leaky_relu(self.condition(latent), 0.2)
        condition = F.interpolate(condition, size=image.shape[-2:], mode="nearest")
        return self.body(torch.cat([image * 2.0 - 1.0, condition], dim=1))


def critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN loss of the critic (softplus form of the binary cross-entropy)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN loss of the decoder: push the critic's logits on decoded crops up."""
    return F.softplus(-fake_logits).mean()
