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

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DPFusionError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        raise DPFusionError(f"{path}: not a loadable dpfusion checkpoint ({type(exc).__name__})") from None
