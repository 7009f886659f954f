"""Weights on disk as ``NAME.safetensors`` beside a JSON config, written and located in one way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError


def save_weights(
    folder: Path, weights_name: str, config_name: str, tensors: dict[str, torch.Tensor], config: dict[str, Any]
) -> Path:
    """Write both files atomically; returns the weights path."""
    with atomic_path(folder / weights_name) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp))
    with atomic_path(folder / config_name) as tmp:
        tmp.write_text(json.dumps(config, indent=2))
    return folder / weights_name


def weights_files(path: str | Path, weights_name: str, config_name: str, what: str) -> tuple[Path, Path]:
    """(config, weights) paths for a folder or its weights file; both must exist."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path, weights_path = folder / config_name, folder / weights_name
    for required in (config_path, weights_path):
        if not required.is_file():
            raise DPFusionError(f"{what} incomplete: {required} not found")
    return config_path, weights_path
