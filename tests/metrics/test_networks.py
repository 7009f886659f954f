from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.networks import NETWORKS, build_network, imagenet_normalized, pretrained_vgg16


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


@pytest.mark.usefixtures("metric_weights")
def test_pretrained_vgg16_is_lpips_vggs_backbone_cut_at_its_last_tap():
    backbone = pretrained_vgg16((3, 8))
    assert len(backbone) == 9 and not any(p.requires_grad for p in backbone.parameters())
    lpips_vgg = build_network("lpips_vgg").features
    for index in (0, 2, 5, 7):
        torch.testing.assert_close(backbone[index].weight, lpips_vgg[index].weight, rtol=0, atol=0)
    x = torch.rand(1, 3, 32, 32)
    taps = backbone(imagenet_normalized(x))
    assert [t.shape[1:] for t in taps] == [(64, 32, 32), (128, 16, 16)]


def test_imagenet_normalized_maps_the_imagenet_mean_to_zero():
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(imagenet_normalized(mean), torch.zeros(1, 3, 4, 4))
    torch.testing.assert_close(imagenet_normalized(mean + 0.229)[0, 0], torch.ones(4, 4))


def test_pretrained_vgg16_without_prepared_weights_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path))
    with pytest.raises(DPFusionError, match="weights prepare"):
        pretrained_vgg16((3,))
