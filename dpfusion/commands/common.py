"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dpfusion.errors import DPFusionError


def read_bytes(path: str) -> bytes:
    source = Path(path)
    if not source.is_file():
        raise DPFusionError(f"file not found: {source}")
    try:
        return source.read_bytes()
    except OSError as exc:
        raise DPFusionError(f"cannot read {source}: {exc.strerror or exc}") from None


def unit_float(name: str) -> Callable[[str], float]:
    """argparse type for a number in [0, 1], with an error that names the option."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {value}")
        return value

    return parse
