"""Fixtures for the training tests: a folder of small structured PNGs and tiny stages to train.

Everything is sized to take milliseconds per step on a busy CPU: crops of 64 pixels (the codecs' total stride),
batches of 2, codecs with N = 8 / M = 12, fusion modules 8 channels wide with one unit.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.losses import build_perceptual_loss
from dpfusion.train.aux_stage import AuxEncoderConfig, AuxEncoderStage
from dpfusion.train.data import CropSampler
from dpfusion.train.export import AUX_CONFIG, AUX_WEIGHTS
from dpfusion.train.fusion_stage import FusionStage, measure_latent_scale
from dpfusion.train.loop import TrainConfig
from dpfusion.weights_io import save_weights

torch.set_num_threads(1)

CROP = 64


def structured_image(height: int, width: int, seed: int) -> np.ndarray:
    """Gradients, a disc, a rectangle and some texture: photo-like enough to train on, never constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack(
        [
            255 * xx / (width - 1),
            255 * yy / (height - 1),
            128 + 90 * np.sin((xx + 2 * yy) / (4 + seed)),
        ],
        axis=2,
    )
    cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(5, 12)
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 256, 3)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    image[top : top + height // 3, left : left + width // 4] = rng.integers(0, 256, 3)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def write_image_folder(folder: Path, count: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(64, 80), (80, 64), (64, 64), (72, 96), (66, 70), (96, 72)]
    for i in range(count):
        Image.fromarray(structured_image(*sizes[i % len(sizes)], seed=i)).save(folder / f"img{i}.png")
    (folder / "sub").mkdir(exist_ok=True)
    Image.fromarray(structured_image(70, 68, seed=99)).save(folder / "sub" / "nested.png")
    Image.fromarray(structured_image(40, 90, seed=5)).save(folder / "too_small.png")  # below the crop: skipped
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="module")
def shared_image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of folder, written once per test module (for tests that chain CLI runs)."""
    return write_image_folder(tmp_path_factory.mktemp("shared") / "images")


@pytest.fixture
def crop_sampler(image_folder: Path) -> CropSampler:
    return CropSampler(image_folder, CROP)


def tiny_config(**overrides) -> TrainConfig:
    values = dict(
        steps=4,
        batch_size=2,
        crop=CROP,
        lr=1e-3,
        checkpoint_every=2,
        log_every=1,
        seed=0,
        threads=1,
        device="cpu",
        grad_clip=1.0,
    )
    values.update(overrides)
    config = TrainConfig(**values)
    config.validate()
    return config


@pytest.fixture
def config_factory() -> Callable[..., TrainConfig]:
    return tiny_config


def perturbed_aux(codec: CodecAdapter, factor: float = 1.5) -> nn.Module:
    """A stand-in for a trained auxiliary encoder: ``g_a`` with its last layer scaled (so y_bar != y_hat)."""
    aux = copy.deepcopy(codec.model.g_a)
    last = [m for m in aux.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)
    return aux


def build_fusion_stage(codec: CodecAdapter, sampler: CropSampler, seed: int = 0, latent_weight: float = 1.0):
    """A FusionStage as ``dpfusion train fusion`` builds it, with the latent scale measured on crops."""
    torch.manual_seed(seed)
    aux = perturbed_aux(codec)
    fusion = LatentFusion(codec.latent_channels, channels=8, units=1, heads=2)
    probe = torch.Generator().manual_seed(seed)
    fusion.latent_scale.copy_(measure_latent_scale(codec, [sampler.sample(4, probe) for _ in range(2)]))
    schedule = NoiseSchedule(num_train_steps=50)
    return FusionStage(codec, aux, fusion, schedule, build_perceptual_loss("mse"), latent_weight)


@pytest.fixture
def fusion_stage_factory(tiny_codec_factory, crop_sampler) -> Callable[..., FusionStage]:
    """``fusion_stage_factory(seed=0, architecture="gain-hyperprior")``: a fresh stage on a fresh tiny codec."""

    def make(seed: int = 0, architecture: str = "gain-hyperprior", latent_weight: float = 1.0) -> FusionStage:
        return build_fusion_stage(tiny_codec_factory(architecture, 0), crop_sampler, seed, latent_weight)

    return make


@pytest.fixture
def aux_stage_factory(tiny_codec_factory) -> Callable[..., AuxEncoderStage]:
    def make(architecture: str = "gain-hyperprior") -> AuxEncoderStage:
        return AuxEncoderStage(tiny_codec_factory(architecture, 0), build_perceptual_loss("mse"), 1.0, 10.0)

    return make


@pytest.fixture
def aux_folder_factory(tmp_path: Path) -> Callable[[CodecAdapter], Path]:
    """An ``aux.safetensors`` / ``aux.json`` folder for a codec, as ``dpfusion train aux`` exports it."""

    def make(codec: CodecAdapter, name: str = "aux") -> Path:
        folder = tmp_path / name
        aux = perturbed_aux(codec)
        save_weights(folder, AUX_WEIGHTS, AUX_CONFIG, aux.state_dict(), AuxEncoderConfig(codec.identity()))
        written = json.loads((folder / AUX_CONFIG).read_text())
        assert written["kind"] == "dpfusion.aux-encoder"
        assert written["config"]["base"]["fingerprint"] == codec.fingerprint.hex()
        return folder

    return make
