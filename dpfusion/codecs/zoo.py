"""CompressAI's zoo architectures as registered codecs, with their official MSE weights.

Official weights are read only from the torch hub cache (this project never downloads at run
time); a local checkpoint may stand in for them.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from compressai.models import CompressionModel
from compressai.zoo import image as compressai_zoo
from compressai.zoo.pretrained import load_pretrained

from dpfusion.codecs.registry import Builder, register_codec
from dpfusion.codecs.state import read_state_dict
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import one_line

ZOO_IDS = {"bmshj2018-hyperprior": 2, "mbt2018-mean": 3, "mbt2018": 4, "cheng2020-anchor": 5, "cheng2020-attn": 6}
"""Container ids of the zoo architectures (append only: files name codecs by them)."""


def hub_checkpoint_path(architecture: str, quality: int) -> Path:
    """Where ``torch.hub`` caches the official MSE weights of a zoo model."""
    url = compressai_zoo.model_urls[architecture]["mse"][quality]
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


def integer_quality(name: str, quality: float | None) -> int:
    """A fixed-rate codec's quality: an integer, given explicitly."""
    if quality is None or not math.isfinite(float(quality)) or float(quality) != int(quality):
        raise DPFusionError(f"{name} needs an integer --quality")
    return int(quality)


def _official_checkpoint(architecture: str, quality: int) -> Path:
    checkpoint = hub_checkpoint_path(architecture, quality)
    if not checkpoint.is_file():
        raise DPFusionError(
            f"official weights for {architecture} quality {quality} not found: put "
            f"{checkpoint.name} (CompressAI model zoo, metric mse) in {checkpoint.parent}"
        )
    return checkpoint


def zoo_builder(architecture: str) -> Builder:
    """The builder of one zoo architecture: its quality range checked, weights from the hub cache or a file."""

    def build(quality: float | None, checkpoint: Path | None) -> tuple[CompressionModel, float]:
        level = integer_quality(architecture, quality)
        qualities = sorted(compressai_zoo.cfgs[architecture])
        if level not in qualities:
            raise DPFusionError(f"{architecture} has qualities {qualities[0]}-{qualities[-1]}, not {level}")
        checkpoint = checkpoint or _official_checkpoint(architecture, level)
        state = load_pretrained(read_state_dict(checkpoint))
        try:
            model = compressai_zoo.model_architectures[architecture].from_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise DPFusionError(f"{checkpoint}: weights do not fit {architecture} ({one_line(exc)})") from None
        return model, float(level)

    return build


for _architecture, _bitstream_id in ZOO_IDS.items():
    register_codec(
        _architecture,
        bitstream_id=_bitstream_id,
        summary=f"CompressAI zoo {_architecture}, official MSE weights from the torch hub cache",
    )(zoo_builder(_architecture))
