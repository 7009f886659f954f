"""Uploaded bytes to arrays, in memory only: a request never names a file on the server."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dpfusion.errors import DPFusionError
from dpfusion.imageio import _to_uint8_rgb

PHOTO_FORMATS = ("PNG", "JPEG", "WEBP")


def read_photo(data: bytes, max_pixels: int, what: str = "image") -> tuple[np.ndarray, list[str]]:
    """An (H, W, 3) uint8 array from PNG/JPEG/WebP bytes, and notes such as a dropped alpha channel."""
    if not data:
        raise DPFusionError(f"{what}: the uploaded file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DPFusionError(
                    f"{what}: {width}x{height} has {width * height} pixels, over this server's limit of {max_pixels}"
                )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                array = _to_uint8_rgb(ImageOps.exif_transpose(image), what)
    except UnidentifiedImageError:
        raise DPFusionError(f"{what}: not a PNG, JPEG or WebP image") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DPFusionError(f"{what}: not a readable image ({' '.join(str(exc).split())})") from None
    return array, [str(w.message) for w in caught]


def read_tau_map(data: bytes, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """A greyscale picture as an (H, W) tau map in [0, 1], white = fidelity; resized as the CLI's --tau-map."""
    rgb, _ = read_photo(data, max_pixels, "tau map")
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    if grey.shape != size:
        grey = np.asarray(Image.fromarray(grey).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return grey.astype(np.float32) / 255.0


def png_bytes(array: np.ndarray) -> bytes:
    """PNG bytes written exactly as ``imageio.save_png`` writes them, so page and CLI files are identical."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
