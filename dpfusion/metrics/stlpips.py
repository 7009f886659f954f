"""ST-LPIPS (Ghildyal and Liu 2022): LPIPS with anti-aliased backbones, tolerant to small shifts.

Weights (backbone and heads, trained by the authors) come from the ``stlpips-pytorch`` wheel via
``dpfusion weights prepare``. Numbers from it are ``stlpips_*``, never to be reported as LPIPS.
"""

from __future__ import annotations

from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.metrics._scoring import score
from dpfusion.metrics.networks import build_network

NETS = ("alex", "vgg")


def _name(net: str) -> str:
    if net not in NETS:
        raise DPFusionError(f"stlpips: unknown backbone {net!r}; choose from {', '.join(NETS)}")
    return f"stlpips_{net}"


def build_stlpips(net: str = "alex") -> nn.Module:
    """A fresh frozen ST-LPIPS module for training losses: ``module(x, y)`` -> (B,) distances, x and y in [0, 1]."""
    return build_network(_name(net))


def stlpips(x: Tensor, y: Tensor, net: str = "alex") -> Tensor:
    """Per-image ST-LPIPS (B,) between (B, 3, H, W) images in [0, 1], scored on their 8-bit rounding."""
    return score(_name(net), x, y)
