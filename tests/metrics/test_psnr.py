from __future__ import annotations

import math

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.psnr import psnr

OFFICIAL = (21.11, 20.99, 27.01, 23.3, 21.62)  # IQA-PyTorch calibration_summary.csv, 2 decimals


def test_calibration_pairs_match_the_published_values(calibration):
    _, ref, dist = calibration
    assert psnr(dist, ref).tolist() == pytest.approx(OFFICIAL, abs=0.01)


def test_scores_the_8bit_rounding():
    x = torch.randint(0, 255, (2, 3, 16, 16)) / 255
    assert torch.isinf(psnr(x, x + 0.4 / 255 * (torch.rand_like(x) - 0.5))).all()  # below half a level
    assert psnr(x, x + 1 / 255).tolist() == pytest.approx([20 * math.log10(255)] * 2)  # one level everywhere


def test_shape_mismatch_is_an_error():
    with pytest.raises(DPFusionError, match=r"psnr: image shapes differ"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(DPFusionError, match=r"psnr: expected images of shape \(B, 3, H, W\)"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
