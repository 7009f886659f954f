"""NIQE (Mittal et al. 2013), the no-reference naturalness score: lower is more natural.

A port of the original MATLAB release as BasicSR 1.4.2 re-implements it (96x96 blocks, two
scales, MATLAB's antialiased bicubic ``imresize`` for the second), in float64 throughout as
MATLAB computes, with the pristine-model parameters that BasicSR ships
(``niqe_pris_params.npz``, cached by ``dpfusion weights prepare``). BasicSR is not imported at
run time: it pulls in OpenCV and a training stack. Colour images are turned grey exactly as the
MATLAB release does (``rgb2gray`` on 8-bit input: NTSC luma weights, rounded to 8 bits); with
that, three of the five calibration values are matched to 1e-3 relative (see the tests).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.ndimage import convolve
from scipy.special import gamma
from torch import Tensor

from dpfusion.errors import DPFusionError
from dpfusion.metrics._images import check_batch, levels
from dpfusion.metrics.weights import cache_dir, load_tensors, require

BLOCK = 96
RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
"""MATLAB ``rgb2gray`` weights (first row of the inverse NTSC YIQ matrix)."""
_GAMMA_GRID = np.arange(0.2, 10.001, 0.001)


@functools.cache
def _ratio_table() -> np.ndarray:
    """r(g) = Gamma(2/g)^2 / (Gamma(1/g) Gamma(3/g)) on the grid MATLAB searches for the AGGD shape."""
    inv = 1 / _GAMMA_GRID
    return gamma(2 * inv) ** 2 / (gamma(inv) * gamma(3 * inv))


def _aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Shape and left/right scales of an asymmetric generalised Gaussian, by moment matching."""
    values = values.ravel()
    left = np.sqrt(np.mean(values[values < 0] ** 2))
    right = np.sqrt(np.mean(values[values > 0] ** 2))
    gamma_hat = left / right
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = _GAMMA_GRID[np.argmin((_ratio_table() - r_norm) ** 2)]
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * spread, right * spread


def _block_features(block: np.ndarray) -> list[float]:
    alpha, left, right = _aggd(block)
    features = [alpha, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, left, right = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (right - left) * gamma(2 / alpha) / gamma(1 / alpha)
        features += [alpha, mean, left, right]
    return features


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (a = -0.5)."""
    ax = np.abs(x)
    inner = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    return inner + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _half_matrix(length: int) -> np.ndarray:
    """The (ceil(length/2), length) matrix of MATLAB ``imresize(., 0.5)``: antialiased bicubic, symmetric edges."""
    scale, width = 0.5, 4 / 0.5
    out = math.ceil(length * scale)
    centre = np.arange(1, out + 1) / scale + 0.5 * (1 - 1 / scale)
    taps = np.floor(centre - width / 2)[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    weights = scale * _cubic((centre[:, None] - taps) * scale)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    index = mirror[(taps.astype(int) - 1) % (2 * length)]
    matrix = np.zeros((out, length))
    np.add.at(matrix, (np.repeat(np.arange(out), taps.shape[1]), index.ravel()), weights.ravel())
    return matrix


def _niqe(image: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray, window: np.ndarray) -> float:
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    image = image[: rows * BLOCK, : cols * BLOCK]
    scales = []
    for scale in (1, 2):
        mu = convolve(image, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(image**2, window, mode="nearest") - mu**2))
        normalised = (image - mu) / (sigma + 1)
        size = BLOCK // scale
        scales.append(
            [
                _block_features(normalised[r * size : (r + 1) * size, c * size : (c + 1) * size])
                for c in range(cols)
                for r in range(rows)
            ]
        )
        if scale == 1:
            image = _half_matrix(image.shape[0]) @ image @ _half_matrix(image.shape[1]).T
    features = np.concatenate([np.asarray(s) for s in scales], axis=1)
    mu_dist = np.nanmean(features, axis=0)
    cov_dist = np.cov(features[~np.isnan(features).any(axis=1)], rowvar=False)
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))


@functools.cache
def _params(_folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    state = load_tensors("niqe")
    return state["mu_pris_param"].numpy().ravel(), state["cov_pris_param"].numpy(), state["gaussian_window"].numpy()


def niqe(x: Tensor) -> Tensor:
    """Per-image NIQE (B,) of (B, 3, H, W) images in [0, 1]; each needs at least two 96x96 blocks."""
    check_batch(x, "niqe")
    if (x.shape[-2] // BLOCK) * (x.shape[-1] // BLOCK) < 2:
        raise DPFusionError(f"niqe needs at least two {BLOCK}x{BLOCK} blocks, got a {x.shape[-2]}x{x.shape[-1]} image")
    require("niqe")
    params = _params(str(cache_dir()))
    grey = np.round(np.einsum("bchw,c->bhw", levels(x).cpu().numpy(), RGB2GRAY))
    return torch.tensor([_niqe(image, *params) for image in grey], dtype=torch.float64)
