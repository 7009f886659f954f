from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.networks import NETWORKS, build_network


@pytest.mark.usefixtures("metric_weights")
@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_is_a_frozen_differentiable_distance(name):
    net = build_network(name)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 40, 56, requires_grad=True)
    y = torch.rand(2, 3, 40, 56)
    distance = net(x, y)
    assert distance.shape == (2,) and (distance > 0).all()
    distance.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_unknown_network_is_an_error():
    with pytest.raises(DPFusionError, match="unknown metric network 'lpips_squeeze'"):
        build_network("lpips_squeeze")
