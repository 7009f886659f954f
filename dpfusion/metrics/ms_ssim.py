"""MS-SSIM (Wang et al. 2003, five scales) over RGB via ``pytorch-msssim``, on 8-bit-rounded images.

Each channel is scored separately and the scores averaged, as CompressAI and most learned-codec
papers report it. Five scales with the 11-tap window need at least 161 pixels per side; smaller
images are refused rather than scored on fewer scales, since such a number would not be MS-SSIM.
"""

from __future__ import annotations

from pytorch_msssim import ms_ssim as _ms_ssim
from torch import Tensor

from dpfusion.errors import DPFusionError
from dpfusion.metrics._images import check_pair, levels

MIN_SIDE = (11 - 1) * 2**4 + 1


def ms_ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-image MS-SSIM (B,) of (B, 3, H, W) images in [0, 1] (data range 1)."""
    check_pair(x, y, "ms_ssim")
    if min(x.shape[-2:]) < MIN_SIDE:
        size = f"{x.shape[-2]}x{x.shape[-1]}"
        raise DPFusionError(f"ms_ssim needs images at least {MIN_SIDE}x{MIN_SIDE} (5 scales), got {size}")
    return _ms_ssim(levels(x) / 255, levels(y) / 255, data_range=1.0, size_average=False)
