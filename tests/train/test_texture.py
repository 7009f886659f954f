"""The texture-statistics term: a distance between feature distributions, blind to where a texture sits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dpfusion.errors import DPFusionError
from dpfusion.losses import build_perceptual_loss
from dpfusion.train.fusion_stage import FusionStage
from dpfusion.train.texture import TextureLoss, sliced_wasserstein


def _directions(k: int, c: int) -> torch.Tensor:
    return F.normalize(torch.randn(k, c, generator=torch.Generator().manual_seed(0)), dim=1)


def test_sliced_wasserstein_compares_distributions_not_positions():
    features = torch.randn(2, 8, 10, 10, generator=torch.Generator().manual_seed(1))
    directions = _directions(16, 8)
    shuffled = features.flatten(2)[:, :, torch.randperm(100, generator=torch.Generator().manual_seed(2))]
    torch.testing.assert_close(sliced_wasserstein(features, shuffled, directions), torch.zeros(2))
    assert (sliced_wasserstein(features, features.flatten(2) * 0.5, directions) > 0.1).all()
    average = features.flatten(2).mean(2, keepdim=True).expand(-1, -1, 100)  # a regression's average: no spread
    assert (sliced_wasserstein(features, average, directions) > 0.1).all()


def test_one_dimension_is_the_sorted_difference():
    fx, fy = torch.tensor([[[3.0, 1.0, 2.0]]]), torch.tensor([[[0.0, 5.0, 1.0]]])
    expected = ((torch.tensor([1.0, 2.0, 3.0]) - torch.tensor([0.0, 1.0, 5.0])) ** 2).mean()
    torch.testing.assert_close(sliced_wasserstein(fx, fy, torch.ones(1, 1)), expected.view(1))


@pytest.fixture
def texture_loss(metric_weights) -> TextureLoss:
    return TextureLoss()


def test_texture_loss_sees_blur_and_forgives_a_shift(texture_loss):
    torch.manual_seed(0)
    texture = F.interpolate(torch.rand(1, 3, 32, 32), size=96, mode="nearest")
    blurred = F.avg_pool2d(texture, 5, stride=1, padding=2, count_include_pad=False)
    shifted = torch.roll(texture, shifts=(5, 7), dims=(2, 3))
    assert float(texture_loss(texture, texture)) == pytest.approx(0.0, abs=1e-6)
    blur, shift = float(texture_loss(blurred, texture)), float(texture_loss(shifted, texture))
    assert shift < 0.25 * blur, (shift, blur)
    assert float(F.mse_loss(shifted, texture)) > float(F.mse_loss(blurred, texture))  # where MSE says the opposite


def test_texture_loss_is_differentiable_in_the_decode_only(texture_loss):
    decoded = torch.rand(1, 3, 64, 64, requires_grad=True)
    original = torch.rand(1, 3, 64, 64, requires_grad=True)
    texture_loss(decoded, original).backward()
    assert decoded.grad is not None and decoded.grad.abs().sum() > 0
    assert original.grad is None
    assert all(p.grad is None for p in texture_loss.parameters())


def test_texture_term_joins_the_fusion_loss(fusion_stage_factory, crop_sampler, metric_weights):
    plain = fusion_stage_factory()
    parts = (plain.codec, plain.aux, plain.fusion, plain.schedule, build_perceptual_loss("mse"), 1.0)
    stage = FusionStage(*parts, texture_weight=0.5).train()
    batch = crop_sampler.sample(2, torch.Generator().manual_seed(3))
    torch.manual_seed(11)
    loss, logs = stage(batch)
    torch.manual_seed(11)
    plain_loss, _ = FusionStage(*parts).train()(batch)
    torch.testing.assert_close(loss.detach(), plain_loss.detach() + 0.5 * logs["texture"])
    assert float(logs["texture"]) > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.fusion.parameters())
    assert stage.stage_config().texture_weight == 0.5
    with pytest.raises(DPFusionError, match="texture weight"):
        FusionStage(*parts, texture_weight=-1.0)
