"""NIQE against the published calibration values (original MATLAB release, IQA-PyTorch's table).

I03, I04 and I06 match to 1e-3 relative. I08 (+0.019) and I19 (+0.39) do not: NIQE picks
each block's AGGD shape by an argmin over a 0.001 grid, so tiny numeric differences flip
choices, and the strongly blurred I19 has few informative blocks. Other ports miss them too
(IQA-PyTorch: 3.1921 and 9.0722; BasicSR 1.4.2's float32 code: 3.1988 and 8.6691), so those
two are checked to 5 % only: enough to catch a broken feature or model, not a rounding change.
"""

from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.niqe import niqe

pytestmark = pytest.mark.usefixtures("metric_weights")

OFFICIAL = {"I03": 15.7536, "I04": 3.6549, "I06": 3.2355, "I08": 3.184, "I19": 8.6352}
EXACT = {"I03", "I04", "I06"}


def test_calibration_images_match_the_published_values(calibration):
    names, _, dist = calibration
    for name, value in zip(names, niqe(dist).tolist(), strict=True):
        assert value == pytest.approx(OFFICIAL[name], rel=1e-3 if name in EXACT else 0.05), name


def test_ranks_distortion(calibration):
    """The reference photos are more natural than their heavily distorted versions (I03, I19)."""
    names, ref, dist = calibration
    pick = [names.index("I03"), names.index("I19")]
    assert (niqe(ref[pick]) < niqe(dist[pick])).all()


def test_needs_two_blocks():
    with pytest.raises(DPFusionError, match=r"niqe needs at least two 96x96 blocks, got a 96x191 image"):
        niqe(torch.rand(1, 3, 96, 191))
