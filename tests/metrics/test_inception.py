from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.metrics.inception import _tf1_resize, hific_patches, inception_features


def test_hific_patches_take_the_grid_and_the_grid_shifted_by_128():
    image = torch.arange(512 * 768, dtype=torch.float32).reshape(1, 512, 768).expand(3, -1, -1)
    patches = hific_patches(image)
    corners = [(0, 0), (0, 256), (0, 512), (256, 0), (256, 256), (256, 512), (128, 128), (128, 384)]
    assert patches.shape == (8, 3, 256, 256)
    assert [int(p[0, 0, 0]) for p in patches] == [top * 768 + left for top, left in corners]
    assert hific_patches(torch.zeros(3, 256, 383)).shape[0] == 1
    assert hific_patches(torch.zeros(3, 255, 1000)).shape[0] == 0


def test_resize_is_tensorflow1_bilinear():
    """TF1 resize_bilinear samples source row i * in / out, interpolating linearly, clamped at the edge."""
    x = torch.rand(1, 3, 256, 256, dtype=torch.float64)
    source = np.arange(299) * 256 / 299
    low = np.floor(source).astype(int)
    frac = source - low
    matrix = np.zeros((299, 256))
    matrix[np.arange(299), low] += 1 - frac
    matrix[np.arange(299), np.minimum(low + 1, 255)] += frac
    expected = matrix @ x[0, 1].numpy() @ matrix.T
    np.testing.assert_allclose(_tf1_resize(x, 299)[0, 1].numpy(), expected, atol=1e-12)


@pytest.mark.usefixtures("metric_weights")
def test_too_few_patches_is_an_error():
    with pytest.raises(DPFusionError, match=r"fid: images yield 1 patches of 256x256; need at least 2"):
        inception_features(torch.rand(1, 3, 256, 300), "fid")
