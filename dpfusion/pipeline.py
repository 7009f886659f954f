"""Image <-> .dpf bytes, the path every command and the Python API share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from dpfusion import imageio
from dpfusion.bitstream import DpfFile, pack, unpack
from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.loading import load_codec
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor, to_uint8


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # (H, W, 3) uint8
    latent: Tensor  # the y_hat carried by the file
    file: DpfFile


def compress(codec: CodecAdapter, image: np.ndarray, tau: float | None = None) -> bytes:
    """Encode an (H, W, 3) uint8 image into a complete .dpf file."""
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


def codec_for(file: DpfFile, checkpoint: str | Path | None = None) -> CodecAdapter:
    """Load the codec a file names and refuse it unless its weights are the ones that wrote the file."""
    codec = load_codec(file.codec, file.quality, checkpoint)
    check_fingerprint(codec, file)
    return codec


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
    return file


def decode_base(data: bytes, codec: CodecAdapter | None = None, checkpoint: str | Path | None = None) -> Decoded:
    """Parse a .dpf file and reconstruct the base codec's image (tau = 1)."""
    file = parse_for_decoding(data)
    if codec is None:
        codec = codec_for(file, checkpoint)
    else:
        check_fingerprint(codec, file)
    encoded = Encoded(strings=file.strings, image_size=(file.height, file.width))
    latent = codec.decode_latent(encoded)
    image = to_uint8(codec.synthesize(latent, encoded.image_size))
    return Decoded(image=image, latent=latent, file=file)
