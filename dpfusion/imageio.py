"""Reading any common photo into 8-bit RGB, and writing PNGs atomically.

Codecs see one canonical input: uint8 RGB in display orientation. Everything odd
about the file (alpha, palette, greyscale, 16-bit samples, EXIF rotation) is
resolved here, once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from dpfusion.atomic import PathLike, atomic_paths
from dpfusion.errors import DPFusionError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})
MAX_PIXELS = 64_000_000
"""Largest padded image accepted (about 8000x8000): beyond it the codec's activations would not fit in memory."""
GUARD_STRIDE = 64
"""The padding the pixel guard assumes, before any codec is loaded: the largest stride of the registered
codecs (every hyperprior downsamples by 64), so a codec with a finer stride pads less than the guard counts."""


def image_files(folder: str | Path, what: str) -> list[Path]:
    """Image files under ``folder`` and its sub-folders, sorted for reproducibility; none is an error."""
    root = Path(folder)
    if not root.is_dir():
        raise DPFusionError(f"{what} not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DPFusionError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return files


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size the pixel guard counts: each side padded up to a multiple of ``GUARD_STRIDE``."""
    return -(-height // GUARD_STRIDE) * GUARD_STRIDE, -(-width // GUARD_STRIDE) * GUARD_STRIDE


def check_pixels(height: int, width: int, what: str) -> None:
    """Refuse an image whose *padded* size is over MAX_PIXELS (1x1048576 pads to 64x1048576), before allocating it."""
    padded_h, padded_w = padded_size(height, width)
    if padded_h * padded_w > MAX_PIXELS:
        side = math.isqrt(MAX_PIXELS)
        raise DPFusionError(
            f"{what} {width}x{height}, padded to {padded_w}x{padded_h} = {padded_h * padded_w} pixels, is over the "
            f"limit of {MAX_PIXELS} (about {side}x{side})"
        )


def _to_uint8_rgb(image: Image.Image, name: str) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        warnings.warn(f"{name}: alpha channel dropped", stacklevel=3)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        samples = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or samples.max() > 255 else 255.0
        grey = np.clip(np.round(samples / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGB;16", "RGBA;16") or getattr(image, "bits", 8) == 16:
        samples = np.asarray(image, dtype=np.float64)[..., :3]
        return np.clip(np.round(samples / 65535.0 * 255.0), 0, 255).astype(np.uint8)
    return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy, unlike np.asarray


def load_image(path: str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 array in display orientation; raises DPFusionError on any unusable file."""
    path = Path(path)
    if not path.is_file():
        raise DPFusionError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            check_pixels(image.size[1], image.size[0], f"{path}:")
            frames = getattr(image, "n_frames", 1)
            if frames > 1:  # encoding frame 1 of an animation without a word would be a silent conversion
                raise DPFusionError(f"{path}: an animation of {frames} frames; dpfusion encodes still images")
            image = ImageOps.exif_transpose(image)
            array = _to_uint8_rgb(image, path.name)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DPFusionError(f"{path}: not a readable image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise DPFusionError(f"{path}: {exc}") from None
    return array


def to_tensor(array: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    if not array.flags.writeable:  # torch warns on read-only arrays (np.asarray of a PIL image)
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float().div(255.0)


def to_uint8(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded as PNG writers do."""
    if image.dim() == 4:
        image = image[0]
    return image.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def save_pngs(paths: Sequence[PathLike], arrays: Sequence[np.ndarray], inputs: Sequence[PathLike | None] = ()) -> None:
    """Write (H, W, 3) uint8 arrays as PNGs, all or none: a failure on the last leaves not even the first.

    ``inputs`` are the command's own input files, which the output policy of ``atomic`` refuses to replace.
    """
    with atomic_paths(paths, inputs) as temps:
        for path, tmp, array in zip(paths, temps, arrays, strict=True):
            try:
                Image.fromarray(array).save(tmp, format="PNG")
            except OSError as exc:  # a full disk, a quota
                raise DPFusionError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_png(path: PathLike, array: np.ndarray, inputs: Sequence[PathLike | None] = ()) -> None:
    """Write one (H, W, 3) uint8 array as PNG via a temporary file, so failures leave nothing."""
    save_pngs([path], [array], inputs)
