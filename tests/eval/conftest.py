"""Fixtures for the evaluation tests: a tiny gain codec and a tiny random fusion module on disk, two tiny images.

``eval_files`` writes
  ``codec/codec.safetensors`` + ``codec/codec.json`` (what ``dpfusion train base`` exports),
  ``fusion/`` (``save_fusion`` of a randomly initialised module whose output layer is not zero,
  so tau < 1 really changes the image),
  ``data/a.png`` (40x56) and ``data/b.png`` (48x64);
and returns their paths plus the CLI arguments that select the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from dpfusion.codecs.loading import load_codec
from dpfusion.fusion.checkpoint import save_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.train.export import CODEC_CONFIG, CODEC_WEIGHTS
from dpfusion.weights_io import save_weights


@dataclass(frozen=True)
class EvalFiles:
    data: Path
    checkpoint: Path
    fusion: Path

    @property
    def model_args(self) -> list[str]:
        return ["--model", "gain-hyperprior", "--checkpoint", str(self.checkpoint), "--fusion", str(self.fusion)]


@torch.no_grad()
def _randomize(fusion: LatentFusion, seed: int = 0) -> LatentFusion:
    generator = torch.Generator().manual_seed(seed)
    for module in fusion.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / module.weight[0].numel() ** 0.5)
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return fusion.eval()


@pytest.fixture
def eval_files(tmp_path: Path, tiny_gain_model, tiny_image_factory) -> EvalFiles:
    tiny_gain_model.update(force=True)
    checkpoint = save_weights(
        tmp_path / "codec", CODEC_WEIGHTS, CODEC_CONFIG, tiny_gain_model.state_dict(), tiny_gain_model
    )
    codec = load_codec("gain-hyperprior", 0.0, checkpoint)
    torch.manual_seed(0)
    fusion = _randomize(LatentFusion(codec.latent_channels, channels=8, units=1, heads=2))
    save_fusion(tmp_path / "fusion", fusion, NoiseSchedule(num_train_steps=100), codec)
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(tiny_image_factory(40, 56, seed=1)).save(data / "a.png")
    Image.fromarray(tiny_image_factory(48, 64, seed=2)).save(data / "b.png")
    return EvalFiles(data, checkpoint, tmp_path / "fusion")
