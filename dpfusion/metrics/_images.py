"""Input checks shared by the metrics: every metric takes (B, 3, H, W) float images in [0, 1]."""

from __future__ import annotations

from torch import Tensor

from dpfusion.errors import DPFusionError


def check_batch(x: Tensor, metric: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise DPFusionError(f"{metric}: expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DPFusionError(f"{metric}: expected float images in [0, 1], got dtype {x.dtype}")


def check_pair(x: Tensor, y: Tensor, metric: str) -> None:
    check_batch(x, metric)
    check_batch(y, metric)
    if x.shape != y.shape:
        raise DPFusionError(f"{metric}: image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")


def levels(x: Tensor) -> Tensor:
    """The 8-bit values 0..255 (float64) the image would be stored as: metrics score what a viewer gets."""
    return x.detach().double().clamp(0, 1).mul(255).round()


def quantize(x: Tensor) -> Tensor:
    """The 8-bit rounding of ``x``, back in [0, 1] and in ``x``'s dtype."""
    return levels(x).div(255).to(x.dtype)
