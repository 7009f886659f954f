"""Fusion weights on disk: ``fusion.safetensors`` plus ``fusion.json``.

The JSON records the network size, the noise schedule and the fingerprint of the
base codec the module was trained for; loading refuses any other codec, because
a fusion module only knows the latent space it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.errors import DPFusionError
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.weights_io import save_weights, weights_files

WEIGHTS_NAME = "fusion.safetensors"
CONFIG_NAME = "fusion.json"


def save_fusion(
    folder: str | Path,
    fusion: LatentFusion,
    schedule: NoiseSchedule,
    codec: CodecAdapter,
    half: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write weights (fp16 if ``half``) and config atomically; returns the weights path."""
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.to(dtype) for k, v in fusion.state_dict().items()}
    config = {
        "fusion": fusion.describe(),
        "schedule": schedule.to_dict(),
        "base": codec.describe(),
        **(extra or {}),
    }
    return save_weights(Path(folder), WEIGHTS_NAME, CONFIG_NAME, tensors, config)


def load_fusion(path: str | Path, codec: CodecAdapter, any_base: bool = False) -> tuple[LatentFusion, NoiseSchedule]:
    """Load a fusion module for ``codec``; ``path`` is the folder or its ``fusion.safetensors``.

    ``any_base`` accepts a module trained for other weights with the same latent width: a start
    for fine-tuning on a retrained codec, never a module to decode with.
    """
    config_path, weights_path = weights_files(path, WEIGHTS_NAME, CONFIG_NAME, "fusion checkpoint")
    try:
        config = json.loads(config_path.read_text())
        expected = config["base"]["fingerprint"]
        fusion = LatentFusion(**config["fusion"])
        schedule = NoiseSchedule(**config["schedule"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, DPFusionError) as exc:
        raise DPFusionError(f"{config_path}: not a fusion config ({exc})") from None
    if any_base and fusion.config["latent_channels"] != codec.latent_channels:
        raise DPFusionError(
            f"fusion module expects {fusion.config['latent_channels']} latent channels, "
            f"{codec.name} has {codec.latent_channels}"
        )
    if not any_base and expected != codec.fingerprint.hex():
        raise DPFusionError(
            f"fusion module was trained for {config['base'].get('codec')} weights {expected}, "
            f"not for the loaded {codec.name} weights {codec.fingerprint.hex()}"
        )
    if fusion.adapter is not None:
        fusion.adapter.check(codec.model.g_s, codec.latent_channels)
    try:
        state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
        fusion.load_state_dict(state)
    except Exception as exc:  # safetensors and load_state_dict raise several types
        raise DPFusionError(f"{weights_path}: weights do not fit the config ({exc})") from None
    return fusion.eval(), schedule
