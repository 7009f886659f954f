"""Fixtures for ``dpfusion serve``: the embedded model (loaded once), a small crop of the sample, an app factory.

The crop is 176x176: small enough for decodes of a fraction of a second on two busy
cores, and above MS-SSIM's 161-pixel minimum, so every page metric can be scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dpfusion
from dpfusion.api import Model
from dpfusion.serve.service import SAMPLE

CROP = 176
STEPS = 2


@pytest.fixture(scope="session")
def model(metric_weights) -> Model:
    """The default model as ``dpfusion serve`` loads it: uploads are encoded with the sender's per-image dial."""
    return dpfusion.load()


@pytest.fixture(scope="session")
def sample_crop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The top-left 176x176 of the bundled sample as a PNG (what the test servers offer as "the sample")."""
    path = tmp_path_factory.mktemp("serve") / "sample.png"
    with Image.open(SAMPLE) as image:
        image.convert("RGB").crop((0, 0, CROP, CROP)).save(path)
    return path


@pytest.fixture
def sample_array(sample_crop: Path) -> np.ndarray:
    return np.asarray(Image.open(sample_crop).convert("RGB"))


@pytest.fixture
def client_factory(model: Model, sample_crop: Path) -> Iterator[Callable]:
    """``client_factory(**limits)``: a TestClient (lifespan running) on a fresh app over the shared model."""
    from fastapi.testclient import TestClient

    from dpfusion.serve.app import create_app
    from dpfusion.serve.limits import Limits

    clients = []

    def make(**limits: object) -> TestClient:
        client = TestClient(create_app(model, Limits(**limits), sample_crop), raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
