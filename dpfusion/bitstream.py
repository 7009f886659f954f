"""The ``.dpf`` container: a compact, strictly parsed wrapper around the codec's strings.

Layout (integers little-endian, ``varint`` = unsigned LEB128)::

    magic      3 bytes  b"DPF"
    version    1 byte
    codec      1 byte   the codec's registered bitstream id (codecs.registry)
    quality    2 bytes  quality or rate index x 1000
    weights    8 bytes  fingerprint of the codec's weights
    height     varint
    width      varint
    tau        1 byte   sender's suggested tau x 254, or 255 for none
    n_strings  1 byte
    lengths    varint x n_strings
    strings    the entropy-coded bytes, back to back
    crc32      4 bytes  over everything before it

Typical overhead over the raw strings: 27-29 bytes. Every violation of this layout
raises ``BitstreamError``; a file is never half-parsed into a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from dpfusion.codecs.registry import codec_for_id, codec_spec
from dpfusion.errors import DPFusionError

MAGIC = b"DPF"
VERSION = 2
"""2: the entropy model's scales and means are computed in exact integers (``codecs.integer``), so a
file decodes to the same latent on every machine. Version 1 used the float network: its files decode
only where the float sums happen to round the same, so they are refused, not misread."""
FLOAT_ENTROPY_VERSION = 1
NO_TAU = 255
MAX_STRINGS = 8
MAX_SIDE = 1 << 20
QUALITY_SCALE = 1000
"""The quality field stores ``round(quality * QUALITY_SCALE)``: rates are exact to 1/1000."""


class BitstreamError(DPFusionError):
    """The bytes are not a valid .dpf file for this version of dpfusion."""


@dataclass(frozen=True)
class DpfFile:
    codec: str
    quality: float
    fingerprint: bytes
    height: int
    width: int
    strings: tuple[bytes, ...]
    tau: float | None = None

    @property
    def pixels(self) -> int:
        return self.height * self.width


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            raise BitstreamError(f"truncated file: {what} runs past the end")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def varint(self, what: str) -> int:
        value = 0
        for shift in range(0, 35, 7):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:  # a redundant zero group: one value, two encodings
                    break
                return value
        raise BitstreamError(f"corrupt file: {what} is not a valid varint")


def pack(file: DpfFile) -> bytes:
    """Serialise; validates every field so a bad writer fails here, not at the receiver."""
    try:
        codec_id = codec_spec(file.codec).bitstream_id
    except DPFusionError:
        raise BitstreamError(f"codec {file.codec!r} has no container identifier") from None
    scaled = file.quality * QUALITY_SCALE
    if not 0 <= scaled <= 0xFFFF:  # NaN fails this too
        raise BitstreamError(f"quality {file.quality} does not fit the container")
    if len(file.fingerprint) != 8:
        raise BitstreamError("weights fingerprint must be 8 bytes")
    if not (0 < file.height <= MAX_SIDE and 0 < file.width <= MAX_SIDE):
        raise BitstreamError(f"image size {file.width}x{file.height} out of range")
    if file.tau is not None and not 0.0 <= file.tau <= 1.0:
        raise BitstreamError(f"suggested tau {file.tau} outside [0, 1]")
    if not 0 < len(file.strings) <= MAX_STRINGS:
        raise BitstreamError(f"{len(file.strings)} strings; the container holds 1 to {MAX_STRINGS}")
    quality = round(scaled)
    tau = NO_TAU if file.tau is None else round(file.tau * 254)
    body = bytearray(MAGIC)
    body += struct.pack("<BBH", VERSION, codec_id, quality)
    body += file.fingerprint
    body += _varint(file.height) + _varint(file.width)
    body += struct.pack("<BB", tau, len(file.strings))
    for string in file.strings:
        body += _varint(len(string))
    for string in file.strings:
        body += string
    body += struct.pack("<I", zlib.crc32(body))
    return bytes(body)


def unpack(data: bytes) -> DpfFile:
    """Parse and verify; raises BitstreamError naming the first problem found."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not a .dpf file (bad magic bytes)")
    if len(data) < len(MAGIC) + 1 + 4:
        raise BitstreamError("truncated file: shorter than the smallest header")
    version = data[len(MAGIC)]
    if version == FLOAT_ENTROPY_VERSION:
        raise BitstreamError(
            f"a version {version} .dpf file (dpfusion before exact-integer entropy parameters): this dpfusion "
            f"reads version {VERSION}; re-encode the image"
        )
    if version != VERSION:
        raise BitstreamError(f"unsupported .dpf version {version} (this dpfusion reads version {VERSION})")
    (stored_crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != stored_crc:
        raise BitstreamError("corrupt or truncated file: checksum mismatch")
    reader = _Reader(data[:-4])
    reader.take(len(MAGIC) + 1, "header")
    codec_id, quality = struct.unpack("<BH", reader.take(3, "codec identifier"))
    spec = codec_for_id(codec_id)
    if spec is None:
        raise BitstreamError(f"unknown codec identifier {codec_id}")
    fingerprint = reader.take(8, "weights fingerprint")
    height = reader.varint("image height")
    width = reader.varint("image width")
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise BitstreamError(f"corrupt file: image size {width}x{height} out of range")
    tau_code, count = struct.unpack("<BB", reader.take(2, "tau and string count"))
    if not 0 < count <= MAX_STRINGS:
        raise BitstreamError(f"corrupt file: {count} strings")
    lengths = [reader.varint("string length") for _ in range(count)]
    strings = tuple(reader.take(length, "string data") for length in lengths)
    if reader.pos != len(reader.data):
        raise BitstreamError(f"corrupt file: {len(reader.data) - reader.pos} unexpected trailing bytes")
    return DpfFile(
        codec=spec.name,
        quality=quality / QUALITY_SCALE,
        fingerprint=fingerprint,
        height=height,
        width=width,
        strings=strings,
        tau=None if tau_code == NO_TAU else tau_code / 254,
    )
