"""Fixtures for the metric tests: the calibration pairs and a prepared weights cache.

``calibration``
    the five IQA calibration pairs (I03, I04, I06, I08, I19; 384x512 RGB) from
    ``../shared/data/iqa-calibration`` beside the repository, as ``(names, ref, dist)`` with
    ``ref`` and ``dist`` float64 (5, 3, 384, 512) tensors in [0, 1].
``metric_weights`` (in ``tests/conftest.py``)
    the prepared weights cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)

CALIBRATION = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "iqa-calibration"
NAMES = ("I03", "I04", "I06", "I08", "I19")


def _load(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).double() / 255


@pytest.fixture(scope="session")
def calibration() -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor]:
    if not CALIBRATION.is_dir():
        pytest.fail(f"calibration images not found in {CALIBRATION.resolve()}")
    ref = torch.stack([_load(CALIBRATION / "ref" / f"{name}.png") for name in NAMES])
    dist = torch.stack([_load(CALIBRATION / "dist" / f"{name}.png") for name in NAMES])
    return NAMES, ref, dist


@pytest.fixture(scope="session")
def patch_features(metric_weights, calibration) -> dict[str, np.ndarray]:
    """Inception features (15 patches each) of the reference photos, clean and with two noise levels."""
    from dpfusion.metrics.inception import inception_features

    _, ref, _ = calibration
    noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0), dtype=ref.dtype)
    sets = {"clean": ref, "noise_0.03": ref + 0.03 * noise, "noise_0.1": ref + 0.1 * noise}
    return {name: inception_features(images.clamp(0, 1), "fid") for name, images in sets.items()}
