"""FID (Heusel et al. 2017) between two image sets, on HiFiC 256x256 patches (see :mod:`.inception`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from dpfusion.metrics.inception import inception_features


def _cov_factor(features: np.ndarray) -> np.ndarray:
    """A matrix A with A @ A.T equal to the sample covariance; (d, n) or (d, d), whichever is smaller."""
    centred = features - features.mean(axis=0)
    n, d = centred.shape
    if n <= d:
        return centred.T / np.sqrt(n - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / (n - 1))
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two (N, d) feature sets.

    tr sqrt(S_a S_b) is the nuclear norm of A.T @ B for factors S = A A.T: exact, and free of
    the complex or non-finite square roots that ``scipy.linalg.sqrtm`` gives for the singular
    covariances of small patch sets.
    """
    diff = a.mean(axis=0) - b.mean(axis=0)
    fa, fb = _cov_factor(a), _cov_factor(b)
    trace_sqrt = np.linalg.svd(fa.T @ fb, compute_uv=False).sum()
    return float(diff @ diff + (fa * fa).sum() + (fb * fb).sum() - 2 * trace_sqrt)


def fid(real: Tensor | Sequence[Tensor], fake: Tensor | Sequence[Tensor]) -> float:
    """FID between two sets of images in [0, 1]: each a (B, 3, H, W) batch or a list of such batches."""
    return frechet_distance(inception_features(real, "fid"), inception_features(fake, "fid"))
