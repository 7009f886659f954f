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
from safetensors.torch import load_file, save_file

from dpfusion.atomic import atomic_path
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.errors import DPFusionError
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule

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
    folder = Path(folder)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in fusion.state_dict().items()}
    config = {
        "fusion": fusion.describe(),
        "schedule": schedule.to_dict(),
        "base": {"codec": codec.name, "fingerprint": codec.fingerprint.hex()},
        **(extra or {}),
    }
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(config, indent=2))
    return folder / WEIGHTS_NAME


def load_fusion(path: str | Path, codec: CodecAdapter) -> tuple[LatentFusion, NoiseSchedule]:
    """Load a fusion module for ``codec``; ``path`` is the folder or its ``fusion.safetensors``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for required in (config_path, weights_path):
        if not required.is_file():
            raise DPFusionError(f"fusion checkpoint incomplete: {required} not found")
    try:
        config = json.loads(config_path.read_text())
        expected = config["base"]["fingerprint"]
        fusion = LatentFusion(**config["fusion"])
        schedule = NoiseSchedule(**config["schedule"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, DPFusionError) as exc:
        raise DPFusionError(f"{config_path}: not a fusion config ({exc})") from None
    if expected != codec.fingerprint.hex():
        raise DPFusionError(
            f"fusion module was trained for {config['base'].get('codec')} weights {expected}, "
            f"not for the loaded {codec.name} weights {codec.fingerprint.hex()}"
        )
    try:
        state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
        fusion.load_state_dict(state)
    except Exception as exc:  # safetensors and load_state_dict raise several types
        raise DPFusionError(f"{weights_path}: weights do not fit the config ({exc})") from None
    return fusion.eval(), schedule
