from __future__ import annotations

import pytest
import torch

from dpfusion.metrics.dists import build_dists, dists

pytestmark = pytest.mark.usefixtures("metric_weights")

OFFICIAL = (0.4742, 0.1424, 0.0683, 0.0287, 0.3123)  # IQA-PyTorch calibration_summary.csv ("dists")


def test_reproduces_the_calibration_values(calibration):
    _, ref, dist = calibration
    assert dists(dist, ref).tolist() == pytest.approx(OFFICIAL, abs=1e-4)


def test_training_module_gives_gradients_and_zero_for_identical_images():
    module = build_dists()
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    y = torch.rand(2, 3, 64, 64)
    distance = module(x, y)
    assert distance.shape == (2,)
    distance.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert module(y, y).abs().max() < 1e-6
