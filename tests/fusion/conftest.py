"""Fixtures for the fusion tests: tiny fusion modules whose output layer is *not* zero.

A freshly built ``LatentFusion`` returns ``y_hat`` because its output convolution starts at
zero; a test of "tau = 1 equals the base codec" run on such a module would pass even if the
sampler leaked the network's prediction into the result. ``fusion_factory`` therefore
re-draws every weight (output convolution included) from a seeded generator and gives the
latent scale non-trivial values, so the network's prediction really differs from ``y_hat``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from dpfusion.fusion.network import LatentFusion


@torch.no_grad()
def randomize_fusion(fusion: LatentFusion, seed: int = 0) -> LatentFusion:
    """Re-draw every weight from a seeded generator (fan-in scaled, so activations stay O(1)) and
    give the latent scale values in [0.5, 2]; the output convolution is no longer zero."""
    generator = torch.Generator().manual_seed(seed)
    for module in fusion.modules():
        if isinstance(module, nn.GroupNorm):
            module.weight.copy_(1.0 + 0.1 * torch.randn(module.weight.shape, generator=generator))
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        elif isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    fusion.latent_scale.copy_(0.5 + 1.5 * torch.rand(fusion.latent_scale.shape, generator=generator))
    return fusion.eval()


def build_fusion(
    latent_channels: int, channels: int = 8, units: int = 1, heads: int = 2, seed: int = 0, randomize: bool = True
) -> LatentFusion:
    torch.manual_seed(seed)
    fusion = LatentFusion(latent_channels, channels=channels, units=units, heads=heads).eval()
    return randomize_fusion(fusion, seed) if randomize else fusion


@pytest.fixture
def fusion_factory() -> Callable[..., LatentFusion]:
    """``fusion_factory(latent_channels, channels=8, units=1, heads=2, seed=0, randomize=True)``."""
    return build_fusion


@pytest.fixture
def randomize() -> Callable[..., LatentFusion]:
    return randomize_fusion
