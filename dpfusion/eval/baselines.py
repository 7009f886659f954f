"""Classical baselines through Pillow: JPEG (4:2:0) and WebP, measured like the learned codec.

The bit count is the length of the complete file Pillow writes (headers included), exactly
as the learned codec's is the length of the complete ``.dpf`` file.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from dpfusion.errors import DPFusionError


@dataclass(frozen=True)
class Baseline:
    name: str  # the key used on the command line and in results
    label: str  # the curve name (CompressAI's plot tool draws "JPEG"/"WebP" curves dashed)
    qualities: tuple[int, ...]
    encode: Callable[[np.ndarray, int], bytes]


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality), subsampling=2, optimize=True)
    return buffer.getvalue()


def _webp(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", quality=int(quality), method=6)
    return buffer.getvalue()


BASELINES: dict[str, Baseline] = {
    "jpeg": Baseline("jpeg", "JPEG (Pillow 4:2:0)", (10, 20, 30, 40, 50, 60, 75, 90), _jpeg),
    "webp": Baseline("webp", "WebP (Pillow)", (5, 10, 20, 30, 50, 70, 90), _webp),
}


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def check_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise DPFusionError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if name == "webp" and not features.check("webp"):
        raise DPFusionError("this Pillow was built without WebP support")
    return BASELINES[name]


def quality_list(text: str, option: str) -> tuple[int, ...]:
    """``10,50,90`` -> (10, 50, 90); every value in [1, 100]."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise DPFusionError(f"{option} must be a comma list of integers, got {text!r}") from None
    if not values or any(not 1 <= v <= 100 for v in values):
        raise DPFusionError(f"{option} values must be in [1, 100], got {text!r}")
    return values
