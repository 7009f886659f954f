from __future__ import annotations

import pytest
import torch

from dpfusion.metrics import METRICS, NO_REFERENCE, SET_METRICS, available_metrics

pytestmark = pytest.mark.usefixtures("metric_weights")


def test_names_are_consistent():
    assert NO_REFERENCE | SET_METRICS <= set(METRICS)
    assert all(reason is None for reason in available_metrics().values())  # after `prepare`


@pytest.mark.parametrize("name", sorted(set(METRICS) - SET_METRICS))
def test_per_image_metrics_return_one_value_per_image(name):
    x = torch.rand(2, 3, 192, 192, generator=torch.Generator().manual_seed(0))
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    values = METRICS[name](x) if name in NO_REFERENCE else METRICS[name](x, y)
    assert values.shape == (2,) and values.device.type == "cpu" and torch.isfinite(values).all()
