"""KID: the unbiased MMD^2 estimator, checked by formula, on synthetic features and on Inception features.

Scoring a set against the very same samples is not 0 for the unbiased estimator: the cross term
includes each sample paired with itself, which gives -(2/m)(mean k(x, x) - mean k(x, x')), a
bias that vanishes only as 1/m. With the 15 calibration patches that is about -0.04, so "itself
is about 0" is checked on independent draws of one distribution instead, and on the real
features only the ordering (itself < mild noise < strong noise) is asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from dpfusion.metrics.kid import kernel_inception_distance, kid


def _mmd2_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1) ** 3

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return within - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2


def test_unbiased_mmd_with_the_cubic_kernel():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(0.5, 1, size=(7, 5))
    assert kernel_inception_distance(a, b, subset_size=7, subsets=1) == pytest.approx(_mmd2_by_loops(a, b), rel=1e-10)


def test_same_distribution_is_near_zero_and_a_shift_increases_it():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 64)), rng.normal(size=(300, 64))
    same = kernel_inception_distance(a, b, subset_size=200, subsets=20)
    shifted = kernel_inception_distance(a, b + 0.2, subset_size=200, subsets=20)
    assert abs(same) < 0.05 * shifted


def test_noise_increases_it_on_inception_features(patch_features):
    clean = patch_features["clean"]
    values = [kernel_inception_distance(clean, patch_features[name]) for name in ("clean", "noise_0.03", "noise_0.1")]
    assert values == sorted(values) and values[0] < values[1] < values[2]


def test_kid_of_images_uses_the_patch_features(calibration, patch_features):
    _, ref, _ = calibration
    first_two = patch_features["clean"][:6]  # 3 patches per 384x512 image
    assert kid(ref[:2], ref[:2]) == pytest.approx(kernel_inception_distance(first_two, first_two), rel=1e-5)
