from __future__ import annotations

import pytest
import torch

from dpfusion.metrics import METRIC_SPECS, METRICS, available_metrics

pytestmark = pytest.mark.usefixtures("metric_weights")
PER_IMAGE = sorted(name for name, spec in METRIC_SPECS.items() if spec.level != "set")


def test_names_are_consistent():
    assert set(METRIC_SPECS) == set(METRICS) == set(available_metrics())
    assert all(METRICS[name] is spec.function for name, spec in METRIC_SPECS.items())
    assert all(reason is None for reason in available_metrics().values())  # after `prepare`


@pytest.mark.parametrize("name", PER_IMAGE)
def test_per_image_metrics_return_one_value_per_image(name):
    x = torch.rand(2, 3, 192, 192, generator=torch.Generator().manual_seed(0))
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    values = METRICS[name](x) if METRIC_SPECS[name].level == "noref" else METRICS[name](x, y)
    assert values.shape == (2,) and values.device.type == "cpu" and torch.isfinite(values).all()
