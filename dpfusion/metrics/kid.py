"""KID (Binkowski et al. 2018) between two image sets, on HiFiC 256x256 patches (see :mod:`.inception`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from dpfusion.metrics.inception import inception_features


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subset_size: int = 1000, subsets: int = 100, seed: int = 0
) -> float:
    """Mean unbiased MMD^2 over random subsets of min(subset_size, len(a), len(b)) features of each set."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    values = []
    for _ in range(subsets):
        values.append(_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]))
    return float(np.mean(values))


def kid(real: Tensor | Sequence[Tensor], fake: Tensor | Sequence[Tensor]) -> float:
    """KID between two sets of images in [0, 1]: each a (B, 3, H, W) batch or a list of such batches."""
    return kernel_inception_distance(inception_features(real, "kid"), inception_features(fake, "kid"))
