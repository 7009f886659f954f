from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from dpfusion.metrics.fid import fid, frechet_distance


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The usual formula (pytorch-fid, TTUR) with scipy's matrix square root."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("n", [40, 6], ids=["more-samples-than-dims", "fewer-samples-than-dims"])
def test_frechet_distance_equals_the_sqrtm_formula(n):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(n, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(0.3, 1.5, size=(n + 3, 8))
    assert frechet_distance(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)


def test_a_set_against_itself_is_zero_and_noise_increases_it(patch_features):
    clean = patch_features["clean"]
    assert clean.shape == (15, 2048)
    assert abs(frechet_distance(clean, clean)) < 1e-6
    mild = frechet_distance(clean, patch_features["noise_0.03"])
    strong = frechet_distance(clean, patch_features["noise_0.1"])
    assert 1 < mild < strong


def test_fid_of_images(calibration, patch_features):
    _, ref, _ = calibration
    assert abs(fid(ref[:2], [ref[i : i + 1] for i in range(2)])) < 1e-6
