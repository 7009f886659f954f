"""The tests' reference decode: a .dpf file through the base codec alone (tau = 1), with the latent it carries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from dpfusion.bitstream import DpfFile
from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.loading import load_codec
from dpfusion.container import check_fingerprint, parse_for_decoding
from dpfusion.imageio import to_uint8


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # (H, W, 3) uint8
    latent: Tensor  # the y_hat carried by the file
    file: DpfFile


def decode_base(data: bytes, codec: CodecAdapter | None = None, checkpoint: str | Path | None = None) -> Decoded:
    """Parse, load the codec the file names (unless given), refuse other weights, decode at tau = 1."""
    file = parse_for_decoding(data)
    if codec is None:
        codec = load_codec(file.codec, file.quality, checkpoint)
    check_fingerprint(codec, file)
    encoded = Encoded(strings=file.strings, image_size=(file.height, file.width))
    latent = codec.decode_latent(encoded)
    return Decoded(image=to_uint8(codec.synthesize(latent, encoded.image_size)), latent=latent, file=file)
