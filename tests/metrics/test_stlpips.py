from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.stlpips import build_stlpips, stlpips

pytestmark = pytest.mark.usefixtures("metric_weights")

# ``stlpips-pytorch==0.0.2``'s own network (LPIPS(net=..., variant="shift_tolerant")) on the
# dist/ref calibration crops [100:228, 150:278]; no ST-LPIPS calibration values are published.
REFERENCE_CROPS = {
    "alex": {"I03": 0.5585570335388184, "I08": 0.06982741504907608},
    "vgg": {"I03": 0.7145412564277649, "I08": 0.07438663393259048},
}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_the_reference_package(calibration, net):
    names, ref, dist = calibration
    pick = [names.index(name) for name in REFERENCE_CROPS[net]]
    crop = (pick, slice(None), slice(100, 228), slice(150, 278))
    expected = list(REFERENCE_CROPS[net].values())
    assert stlpips(dist[crop], ref[crop], net=net).tolist() == pytest.approx(expected, abs=1e-5)


def test_training_module_gives_gradients():
    module = build_stlpips("alex")
    x = torch.rand(1, 3, 48, 48, requires_grad=True)
    module(x, torch.rand(1, 3, 48, 48)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_unknown_backbone_is_an_error():
    with pytest.raises(DPFusionError, match="stlpips: unknown backbone 'resnet'"):
        stlpips(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), net="resnet")
