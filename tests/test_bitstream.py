"""The .dpf container: exact round trips, strict validation, and no mutated file ever accepted."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dpfusion.bitstream import (
    DIAL_CODES,
    MAGIC,
    MAX_SIDE,
    MAX_STRINGS,
    NO_DIAL_VERSION,
    READABLE_VERSIONS,
    VERSION,
    BitstreamError,
    DpfFile,
    decode_dial,
    encode_dial,
    pack,
    unpack,
)
from dpfusion.codecs.registry import codec_names, codec_spec
from dpfusion.errors import DPFusionError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dpf_files = st.builds(
    DpfFile,
    codec=st.sampled_from(codec_names()),
    quality=st.integers(0, 0xFFFF).map(lambda q: q / 1000),
    fingerprint=st.binary(min_size=8, max_size=8),
    height=st.one_of(st.integers(1, 300), st.integers(1, MAX_SIDE)),
    width=st.one_of(st.integers(1, 300), st.integers(1, MAX_SIDE)),
    strings=st.lists(st.binary(max_size=300), min_size=1, max_size=MAX_STRINGS).map(tuple),
    tau=st.one_of(st.none(), st.integers(0, 254).map(lambda t: t / 254)),
    dial=st.one_of(
        st.none(),
        st.lists(st.integers(0, 255), min_size=DIAL_CODES, max_size=DIAL_CODES).map(
            lambda codes: decode_dial(bytes(sorted(codes, reverse=True)))
        ),
    ),
)

SAMPLE = DpfFile(
    codec="gain-hyperprior",
    quality=2.5,
    fingerprint=bytes(range(8)),
    height=37,
    width=50,
    strings=(bytes(range(200)) * 2, b"\x07" * 31),
    tau=0.5,
)
SAMPLE_BYTES = pack(SAMPLE)
DIAL = decode_dial(bytes([240, 230, 220, 190, 170, 150, 120, 100, 80, 50, 20]))


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _raises_or_is_original(data: bytes) -> None:
    """A mutated file must be refused; only a CRC collision (practically never) could give the original back."""
    try:
        parsed = unpack(data)
    except BitstreamError:
        return
    assert parsed == SAMPLE, "a mutated file was accepted as a different file"


def test_bitstream_error_is_a_dpfusion_error() -> None:
    assert issubclass(BitstreamError, DPFusionError)


def test_sample_round_trip_and_layout() -> None:
    assert unpack(SAMPLE_BYTES) == SAMPLE
    assert SAMPLE_BYTES[:3] == MAGIC
    assert SAMPLE_BYTES[3] == NO_DIAL_VERSION  # no dial: written as version 2, which older readers decode
    assert SAMPLE_BYTES[4] == codec_spec("gain-hyperprior").bitstream_id
    assert struct.unpack("<H", SAMPLE_BYTES[5:7])[0] == 2500
    assert SAMPLE_BYTES[7:15] == SAMPLE.fingerprint
    assert struct.unpack("<I", SAMPLE_BYTES[-4:])[0] == zlib.crc32(SAMPLE_BYTES[:-4])


def test_codec_ids_are_append_only() -> None:
    # Files already written depend on these positions.
    built_in = ("dpfusion-default", "gain-hyperprior", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018")
    built_in += ("cheng2020-anchor", "cheng2020-attn")
    assert [codec_spec(name).bitstream_id for name in built_in] == list(range(7))


@pytest.mark.parametrize(
    ("height", "width", "lengths"),
    [(37, 50, (400, 31)), (512, 768, (40_000, 900)), (4000, 6000, (2_000_000, 90_000))],
)
def test_container_overhead_under_32_bytes(height: int, width: int, lengths: tuple[int, ...]) -> None:
    strings = tuple(b"x" * n for n in lengths)
    data = pack(dataclasses.replace(SAMPLE, height=height, width=width, strings=strings))
    assert len(data) - sum(lengths) < 32


@FUZZ
@given(dpf_files)
def test_pack_unpack_round_trip(file: DpfFile) -> None:
    data = pack(file)
    assert unpack(data) == file
    assert pack(unpack(data)) == data


@pytest.mark.parametrize(
    "changes",
    [
        {"codec": "jpeg"},
        {"quality": -0.001},
        {"quality": 65.536},
        {"quality": float("nan")},
        {"quality": float("inf")},
        {"fingerprint": b"1234567"},
        {"fingerprint": b"123456789"},
        {"height": 0},
        {"width": 0},
        {"height": -5},
        {"width": MAX_SIDE + 1},
        {"tau": 1.01},
        {"tau": -0.1},
        {"tau": float("nan")},
        {"strings": ()},
        {"strings": (b"a",) * (MAX_STRINGS + 1)},
        {"dial": (0.5,) * (DIAL_CODES - 1)},
        {"dial": (0.1, *[0.5] * (DIAL_CODES - 1))},
        {"dial": (1.5,) * DIAL_CODES},
        {"dial": (-0.1,) * DIAL_CODES},
        {"dial": (float("nan"),) * DIAL_CODES},
    ],
    ids=lambda changes: "-".join(f"{k}={v!r}"[:24] for k, v in changes.items()),
)
def test_pack_refuses_invalid_fields(changes: dict) -> None:
    with pytest.raises(BitstreamError):
        pack(dataclasses.replace(SAMPLE, **changes))


@FUZZ
@given(st.binary(max_size=400))
@example(b"")
@example(b"DP")
@example(MAGIC)
@example(MAGIC + bytes([VERSION]))
@example(MAGIC + bytes([NO_DIAL_VERSION]))
def test_random_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(BitstreamError):
        unpack(data)


@FUZZ
@given(st.binary(max_size=120))
@example(b"")
@example(bytes(14))
@example(b"\x01\x00" + bytes(8) + b"\x05\x05\xff\x01\x01\x00")  # valid: 5x5, one 1-byte string
@example(b"\x01\x00" + bytes(8) + b"\x85\x00\x05\xff\x01\x01\x00")  # same, non-canonical height
@example(b"\x01\x00" + bytes(8) + b"\x05\x05\xff\x01\x81\x00\x00")  # same, non-canonical length
@example(b"\x01\x00" + bytes(8) + b"\x05\x05\xff\x0b" + bytes(11) + b"\x01\x01\x00")  # valid version 3
@example(b"\x01\x00" + bytes(8) + b"\x05\x05\xff\x00\x01\x01\x00")  # version 3 with an empty dial
def test_random_bodies_with_a_valid_checksum_are_refused_or_canonical(tail: bytes) -> None:
    """Past the checksum, the parser still either refuses or reads the one canonical encoding, in both versions."""
    for version in READABLE_VERSIONS:
        data = _with_crc(MAGIC + bytes([version]) + bytes([codec_spec("mbt2018").bitstream_id]) + tail)
        try:
            parsed = unpack(data)
        except BitstreamError:
            continue
        assert pack(parsed) == data


def test_minimal_hand_written_file_parses() -> None:
    data = _with_crc(MAGIC + bytes([NO_DIAL_VERSION, 4]) + b"\x01\x00" + bytes(8) + b"\x05\x06\xff\x01\x01\x2a")
    assert unpack(data) == DpfFile("mbt2018", 0.001, bytes(8), 5, 6, (b"\x2a",), None)


def test_hand_written_version_three_file_carries_the_dial() -> None:
    codes = bytes([255, 240, 200, 150, 100, 64, 40, 20, 10, 5, 0])
    head = MAGIC + bytes([VERSION, 4]) + b"\x01\x00" + bytes(8) + b"\x05\x06\xff"
    data = _with_crc(head + bytes([DIAL_CODES]) + codes + b"\x01\x01\x2a")
    file = unpack(data)
    assert file.dial == pytest.approx([(c / 255) ** 2 for c in codes])
    assert file.dial[0] == 1.0 and file.dial[-1] == 0.0
    assert pack(file) == data


def test_a_file_with_a_dial_is_version_three_and_ten_bytes_longer() -> None:
    data = pack(dataclasses.replace(SAMPLE, dial=DIAL))
    assert data[3] == VERSION
    assert len(data) == len(SAMPLE_BYTES) + 1 + DIAL_CODES
    assert unpack(data).dial == DIAL


def test_dial_codes_keep_small_weights_precise() -> None:
    weights = (0.97, 0.95, 0.9, 0.5, 0.3, 0.1, 0.05, 0.03, 0.02, 0.01, 0.002)
    decoded = decode_dial(encode_dial(weights))
    assert all(abs(d - w) <= 0.0012 for d, w in zip(decoded, weights, strict=True) if w <= 0.05)
    assert all(abs(d - w) <= 0.004 for d, w in zip(decoded, weights, strict=True))


@pytest.mark.parametrize(
    ("dial_bytes", "message"),
    [
        (b"\x00", "dial of 0"),
        (b"\x0a" + bytes(10), "dial of 10"),
        (b"\x0c" + bytes(12), "dial of 12"),
        (b"\x0b" + bytes([10, 20]) + bytes(9), "rise"),
    ],
)
def test_bad_dials_in_a_version_three_file_are_refused(dial_bytes: bytes, message: str) -> None:
    head = MAGIC + bytes([VERSION, 4]) + b"\x01\x00" + bytes(8) + b"\x05\x06\xff"
    with pytest.raises(BitstreamError, match=message):
        unpack(_with_crc(head + dial_bytes + b"\x01\x01\x2a"))


def test_a_version_two_file_read_as_version_three_is_refused() -> None:
    data = bytearray(SAMPLE_BYTES)
    data[len(MAGIC)] = VERSION
    with pytest.raises(BitstreamError):
        unpack(_with_crc(bytes(data[:-4])))
    with_dial = bytearray(pack(dataclasses.replace(SAMPLE, dial=DIAL)))
    with_dial[len(MAGIC)] = NO_DIAL_VERSION
    with pytest.raises(BitstreamError):
        unpack(_with_crc(bytes(with_dial[:-4])))


def test_non_canonical_varint_is_refused() -> None:
    body = bytearray(pack(dataclasses.replace(SAMPLE, height=5))[:-4])
    offset = len(MAGIC) + 1 + 3 + 8
    assert body[offset] == 5
    body[offset : offset + 1] = b"\x85\x00"  # 5 again, padded with an empty group
    with pytest.raises(BitstreamError, match="varint"):
        unpack(_with_crc(bytes(body)))


def test_every_truncation_is_refused() -> None:
    for length in range(len(SAMPLE_BYTES)):
        with pytest.raises(BitstreamError):
            unpack(SAMPLE_BYTES[:length])


def test_every_single_bit_flip_is_refused() -> None:
    for position in range(len(SAMPLE_BYTES)):
        for bit in range(8):
            data = bytearray(SAMPLE_BYTES)
            data[position] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(data))


@pytest.mark.parametrize("version", [v for v in range(256) if v not in READABLE_VERSIONS])
def test_other_versions_are_refused(version: int) -> None:
    data = bytearray(SAMPLE_BYTES)
    data[len(MAGIC)] = version
    with pytest.raises(BitstreamError, match="version"):
        unpack(bytes(data))
    # Even with a recomputed checksum: a future version is never misread as this one.
    with pytest.raises(BitstreamError, match="version"):
        unpack(_with_crc(bytes(data[:-4])))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE_BYTES) - 1), st.integers(0, 7)), min_size=1, max_size=12))
def test_bit_flips_are_refused(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE_BYTES)
    for position, bit in flips:
        data[position] ^= 1 << bit
    _raises_or_is_original(bytes(data))


@FUZZ
@given(st.binary(min_size=1, max_size=64))
def test_appended_bytes_are_refused(extra: bytes) -> None:
    _raises_or_is_original(SAMPLE_BYTES + extra)


@FUZZ
@given(
    st.integers(0, len(SAMPLE_BYTES)),
    st.integers(0, len(SAMPLE_BYTES)),
    st.binary(max_size=40),
)
def test_random_splices_are_refused(start: int, stop: int, insert: bytes) -> None:
    start, stop = min(start, stop), max(start, stop)
    data = SAMPLE_BYTES[:start] + insert + SAMPLE_BYTES[stop:]
    if data == SAMPLE_BYTES:
        assert unpack(data) == SAMPLE
        return
    _raises_or_is_original(data)


@FUZZ
@given(dpf_files, st.data())
def test_mutations_of_any_valid_file_are_refused(file: DpfFile, data: st.DataObject) -> None:
    original = pack(file)
    cut = data.draw(st.integers(0, len(original) - 1), label="truncate at")
    with pytest.raises(BitstreamError):
        unpack(original[:cut])
    position = data.draw(st.integers(0, len(original) - 1), label="flip byte")
    mutated = bytearray(original)
    mutated[position] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(BitstreamError):  # a one-byte change is always caught by CRC-32
        unpack(bytes(mutated))


def test_a_version_one_file_is_refused_saying_to_re_encode() -> None:
    """Version 1 files carry latents coded with the float entropy network: refused, never misread."""
    data = bytearray(SAMPLE_BYTES)
    data[len(MAGIC)] = 1
    with pytest.raises(BitstreamError, match="re-encode"):
        unpack(_with_crc(bytes(data[:-4])))
