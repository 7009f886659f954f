"""PSNR in dB over RGB, on 8-bit-rounded images with peak 255 (the convention of codec papers)."""

from __future__ import annotations

import torch
from torch import Tensor

from dpfusion.metrics._images import check_pair, levels


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Per-image PSNR (B,) in dB of (B, 3, H, W) images in [0, 1]; identical images give ``inf``."""
    check_pair(x, y, "psnr")
    mse = (levels(x) - levels(y)).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0**2 / mse)
