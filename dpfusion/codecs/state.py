"""A codec's state dict from safetensors or a weights-only torch file, never pickled code."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file, one_line


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a safetensors file, a bare state dict or one under a usual key."""
    if not path.is_file():
        raise DPFusionError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as exc:  # damaged file
            raise DPFusionError(
                f"{path}: not a loadable safetensors file ({type(exc).__name__}: {one_line(exc)})"
            ) from None
    state = load_torch_file(path)
    if isinstance(state, dict):
        for key in ("state_dict", "trainable", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise DPFusionError(f"{path}: does not hold a state dict of tensors")
    return state
