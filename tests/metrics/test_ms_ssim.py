"""MS-SSIM against the published calibration values.

The published MS-SSIM values come from the original (MATLAB) implementation on grey images,
while ours scores RGB as learned-codec papers do. So the calibration test feeds grey images
(MATLAB ``rgb2gray``, rounded to 8 bits, in all three channels): I04, I06 and I08 then match
to one unit in the last digit. I03 and I19, the two most distorted pairs, come out 0.0033 and
0.0044 low; IQA-PyTorch's own port misses the same two by the same amounts (0.6707, 0.8418),
so they are checked to 0.005 only.
"""

from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.ms_ssim import ms_ssim
from dpfusion.metrics.niqe import RGB2GRAY

OFFICIAL = {"I03": 0.6733, "I04": 0.9996, "I06": 0.9998, "I08": 0.9566, "I19": 0.8462}
EXACT = {"I04", "I06", "I08"}


def _grey(x: torch.Tensor) -> torch.Tensor:
    grey = torch.einsum("bchw,c->bhw", x * 255, torch.tensor(RGB2GRAY, dtype=x.dtype)).round() / 255
    return grey[:, None].expand(-1, 3, -1, -1)


def test_calibration_pairs_match_the_published_values(calibration):
    names, ref, dist = calibration
    values = ms_ssim(_grey(dist), _grey(ref)).tolist()
    for name, value in zip(names, values, strict=True):
        assert value == pytest.approx(OFFICIAL[name], abs=1e-4 if name in EXACT else 5e-3), name


def test_rgb_is_the_mean_over_channels(calibration):
    _, ref, dist = calibration
    rgb = ms_ssim(dist[:1], ref[:1])
    per_channel = [ms_ssim(dist[:1, [c] * 3], ref[:1, [c] * 3]) for c in range(3)]
    assert rgb.item() == pytest.approx(torch.cat(per_channel).mean().item(), abs=1e-12)
    assert ms_ssim(ref[:2], ref[:2]).tolist() == pytest.approx([1.0, 1.0])


def test_too_small_for_five_scales_is_an_error():
    x = torch.rand(1, 3, 160, 400)
    with pytest.raises(DPFusionError, match=r"ms_ssim needs images at least 161x161 \(5 scales\), got 160x400"):
        ms_ssim(x, x)
