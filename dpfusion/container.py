"""The ``.dpf`` file around a codec: encode an image into one, parse and vet one for decoding."""

from __future__ import annotations

import numpy as np

from dpfusion import imageio, memory
from dpfusion.bitstream import DpfFile, pack, unpack
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor


def compress(codec: CodecAdapter, image: np.ndarray, tau: float | None = None) -> bytes:
    """Encode an (H, W, 3) uint8 image into a complete .dpf file (refused first if it cannot fit in memory)."""
    _check_memory("compress", image.shape[0], image.shape[1], "image")
    encoded = codec.encode(to_tensor(image))
    return pack(
        DpfFile(
            codec=codec.name,
            quality=codec.quality,
            fingerprint=codec.fingerprint,
            height=encoded.image_size[0],
            width=encoded.image_size[1],
            strings=encoded.strings,
            tau=tau,
        )
    )


def check_fingerprint(codec: CodecAdapter, file: DpfFile) -> None:
    if codec.fingerprint != file.fingerprint:
        raise DPFusionError(
            f"file was written with other {file.codec} weights (fingerprint {file.fingerprint.hex()}, "
            f"loaded {codec.fingerprint.hex()}): decode it with the same model"
        )


def parse_for_decoding(data: bytes) -> DpfFile:
    """``unpack`` plus the size guard: a crafted header must not make the decoder allocate gigabytes."""
    file = unpack(data)
    imageio.check_pixels(file.height, file.width, "file declares an image of")
    _check_memory("decode", file.height, file.width, "file declares an image")
    return file


def _check_memory(operation: memory.Operation, height: int, width: int, what: str) -> None:
    padded_h, padded_w = imageio.padded_size(height, width)
    memory.check_memory(operation, padded_h * padded_w, f"{what} of {width}x{height} (padded {padded_w}x{padded_h})")
