"""``--device cpu|cuda|auto`` for decoding: a torch device, or one line saying why it cannot be had."""

from __future__ import annotations

import torch

from dpfusion.errors import DPFusionError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` is the first GPU when CUDA works, else the CPU; ``cuda`` (or ``cuda:N``) must exist."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DPFusionError(f"unknown device {name!r}; choose from {', '.join(DEVICE_CHOICES)}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DPFusionError(f"device {name!r} asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DPFusionError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type not in ("cpu", "meta"):
        raise DPFusionError(f"unsupported device {name!r}; choose from {', '.join(DEVICE_CHOICES)}")
    return device
