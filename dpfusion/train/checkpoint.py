"""Resumable training checkpoints: weights, optimizer, step and every RNG state.

Saved with ``torch.save`` to a temporary file and renamed, loaded with
``weights_only=True``: only tensors and plain containers, never arbitrary pickles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file

CHECKPOINT_NAME = "checkpoint.pt"
RUN_CONFIG_NAME = "config.json"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    state = load_torch_file(Path(path))
    if not isinstance(state, dict) or "step" not in state:
        raise DPFusionError(f"{path}: not a dpfusion training checkpoint")
    return state
