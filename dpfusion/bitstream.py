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
    dial       version 3 only: 1 byte n = 11, then n bytes: the sender's per-image dial
               (``fusion.image_dial``), round(sqrt(w) * 255) at the taus of ``DIAL_TAUS``;
               version 2 files have none and decode with the module's calibration
    n_strings  1 byte
    lengths    varint x n_strings
    strings    the entropy-coded bytes, back to back
    crc32      4 bytes  over everything before it

Typical overhead over the raw strings: 27-29 bytes, 12 more with a per-image dial. A file
without a dial is written as version 2, so older readers still decode it. Every violation of this layout
raises ``BitstreamError``; a file is never half-parsed into a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from dpfusion.codecs.registry import codec_for_id, codec_spec
from dpfusion.errors import DPFusionError

MAGIC = b"DPF"
VERSION = 3
"""3: version 2 plus the sender's per-image dial. 2: the entropy model's scales and means are computed
in exact integers (``codecs.integer``), so a file decodes to the same latent on every machine. Version 1
used the float network: its files decode only where the float sums happen to round the same, so they are
refused, not misread."""
NO_DIAL_VERSION = 2
READABLE_VERSIONS = (NO_DIAL_VERSION, VERSION)
FLOAT_ENTROPY_VERSION = 1
NO_TAU = 255
DIAL_TAUS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""The taus a per-image dial stores a weight for: every tenth, and two more near tau = 0, where a photo's
blend often beats its own realistic end and the weight falls fastest (chosen on the validation photos,
``benchmarks/image_dial_probes.py``)."""
DIAL_CODES = len(DIAL_TAUS)
DIAL_CODE_STEPS = 255
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
    dial: tuple[float, ...] | None = None
    """The sender's dial for this image: blend weights at the taus of ``DIAL_TAUS`` (``fusion.image_dial``)."""

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
    dial = b"" if file.dial is None else encode_dial(file.dial)
    body = bytearray(MAGIC)
    body += struct.pack("<BBH", NO_DIAL_VERSION if file.dial is None else VERSION, codec_id, quality)
    body += file.fingerprint
    body += _varint(file.height) + _varint(file.width)
    body += struct.pack("<B", tau)
    if file.dial is not None:
        body += struct.pack("<B", len(dial)) + dial
    body += struct.pack("<B", len(file.strings))
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
            f"reads versions {NO_DIAL_VERSION} and {VERSION}; re-encode the image"
        )
    if version not in READABLE_VERSIONS:
        raise BitstreamError(
            f"unsupported .dpf version {version} (this dpfusion reads versions {NO_DIAL_VERSION} and {VERSION})"
        )
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
    (tau_code,) = reader.take(1, "suggested tau")
    dial = _read_dial(reader) if version == VERSION else None
    (count,) = reader.take(1, "string count")
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
        dial=dial,
    )


def encode_dial(weights: tuple[float, ...]) -> bytes:
    """One byte per interior knot, ``round(sqrt(w) * 255)``: the square root keeps the small weights near
    tau = 1, where LPIPS moves fastest, precise (a step of 0.001 at w = 0.02); rounding keeps the fall."""
    values = np.asarray(weights, dtype=np.float64)
    if len(values) != DIAL_CODES:
        raise BitstreamError(f"a per-image dial holds {DIAL_CODES} weights, got {len(values)}")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1) or np.any(np.diff(values) > 0):
        raise BitstreamError("per-image dial weights must lie in [0, 1] and fall as tau rises")
    return bytes(int(c) for c in np.round(np.sqrt(values) * DIAL_CODE_STEPS))


def decode_dial(codes: bytes) -> tuple[float, ...]:
    """The weights a file's dial codes stand for."""
    values = np.frombuffer(codes, dtype=np.uint8).astype(np.float64)
    return tuple(float(v) for v in (values / DIAL_CODE_STEPS) ** 2)


def _read_dial(reader: _Reader) -> tuple[float, ...]:
    (length,) = reader.take(1, "dial length")
    if length != DIAL_CODES:
        raise BitstreamError(f"corrupt file: a dial of {length} weights (version {VERSION} holds {DIAL_CODES})")
    codes = reader.take(length, "dial")
    if any(codes[i + 1] > codes[i] for i in range(length - 1)):
        raise BitstreamError("corrupt file: the dial's weights rise with tau")
    return decode_dial(codes)
