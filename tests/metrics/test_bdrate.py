from __future__ import annotations

import numpy as np
import pytest

from dpfusion.errors import DPFusionError
from dpfusion.metrics.bdrate import bd_quality, bd_rate

# JCTVC-E137 rate (kbit/s) / PSNR (dB) points and the BD-rates its spreadsheet gives, as published
# in Netflix VMAF's python/test/bd_rate_calculator_test.py (as fractions: -0.00465215420752807
# and -0.018779823450567612).
JCTVC_E137 = [
    (
        ([108048.8736, 61279.976, 33905.6656, 18883.6928], [43.6471, 40.3953, 37.247, 34.2911]),
        ([108061.2784, 61299.9936, 33928.7472, 18910.912], [43.6768, 40.4232, 37.2761, 34.3147]),
        -0.465215420752807,
    ),
    (
        ([40433.8848, 7622.7456, 2394.488, 1017.6184], [37.5761, 35.3756, 33.8977, 32.0603]),
        ([40370.12, 7587.0024, 2390.0944, 1017.0984], [37.5982, 35.4025, 33.9194, 32.0822]),
        -1.8779823450567612,
    ),
]


@pytest.mark.parametrize(("anchor", "test", "published"), JCTVC_E137, ids=["E137-1", "E137-2"])
def test_reproduces_the_published_jctvc_e137_bd_rates(anchor, test, published):
    assert bd_rate(anchor, test) == pytest.approx(published, abs=1e-12)


def test_known_shifts():
    rates, psnrs = np.array([0.1, 0.25, 0.5, 1.0]), np.array([28.0, 31.0, 33.5, 36.0])
    for method in ("pchip", "akima", "cubic"):
        assert bd_rate((rates, psnrs), (rates * 0.9, psnrs), method) == pytest.approx(-10.0)
        assert bd_quality((rates, psnrs), (rates, psnrs + 0.5), method) == pytest.approx(0.5)


def test_bad_curves_are_errors():
    curve = ([0.1, 0.2, 0.4], [30.0, 32.0, 34.0])
    with pytest.raises(DPFusionError, match="bd_rate: the two curves' quality ranges do not overlap"):
        bd_rate(curve, ([1, 2, 4], [40, 41, 42]))
    with pytest.raises(DPFusionError, match="bd_psnr: the two curves' rate ranges do not overlap"):
        bd_quality(curve, ([1, 2, 4], [31, 32, 33]))
    with pytest.raises(DPFusionError, match="bd_psnr: each curve needs at least two"):
        bd_quality(curve, ([0.1], [30.0]))
    with pytest.raises(DPFusionError, match="bd_rate: rates must be positive"):
        bd_rate(curve, ([0.0, 0.2, 0.4], [30.0, 32.0, 34.0]))
    with pytest.raises(DPFusionError, match="unknown interpolation 'linear'"):
        bd_rate(curve, curve, method="linear")
