"""A file with a valid CRC but forged strings: a one-line error or a wrong image, never a crash (issue 18, part 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpfusion import container
from dpfusion.bitstream import pack, unpack
from dpfusion.codecs import strings
from dpfusion.codecs.loading import load_codec
from dpfusion.errors import DPFusionError
from tests.conftest import build_tiny_codec, make_image
from tests.decoding import decode_base

TINY = build_tiny_codec("gain-hyperprior", 0, 1.0)
TINY_FILE = unpack(container.compress(TINY, make_image(40, 56)))


def _decode(file) -> None:
    decode_base(pack(file), codec=TINY)


@given(count=st.integers(1, 8).filter(lambda n: n != 2), data=st.data())
@settings(max_examples=20, deadline=None)
def test_wrong_number_of_strings_is_refused(count: int, data) -> None:
    forged = tuple(data.draw(st.sampled_from(TINY_FILE.strings)) for _ in range(count))
    with pytest.raises(DPFusionError, match=f"{count} entropy-coded strings, gain-hyperprior writes 2"):
        _decode(replace(TINY_FILE, strings=forged))


@given(which=st.integers(0, 1), length=st.integers(0, 40).filter(lambda n: n < 8 or n % 4))
@settings(max_examples=30, deadline=None)
def test_strings_the_entropy_coder_cannot_have_written_are_refused(which: int, length: int) -> None:
    forged = list(TINY_FILE.strings)
    forged[which] = (forged[which] * 8)[:length]
    with pytest.raises(DPFusionError, match=f"string {which} is {length} bytes"):
        _decode(replace(TINY_FILE, strings=tuple(forged)))


@given(y=st.binary(min_size=2, max_size=64), z=st.binary(min_size=2, max_size=16))
@settings(max_examples=30, deadline=None)
def test_any_well_formed_strings_decode_to_some_image(y: bytes, z: bytes) -> None:
    words = tuple(s[: 4 * max(2, len(s) // 4)].ljust(8, b"\0") for s in (y, z))
    decoded = decode_base(pack(replace(TINY_FILE, strings=words)), codec=TINY)
    assert decoded.image.shape == (40, 56, 3)


def test_the_guard_covers_the_worst_case() -> None:
    assert strings.guard_bytes(0, 0) == 8
    assert strings.guard_bytes(400, 1000) == 4 * (44 * 1000 + 20 * 100 + 2)
    padded = strings.guarded([b"abcdefgh", b"12345678"], [3, 1])
    assert [p[:8] for p in padded] == [b"abcdefgh", b"12345678"]
    assert [len(p) - 8 for p in padded] == [strings.guard_bytes(8, 3), strings.guard_bytes(8, 1)]
    assert not any(p[8:].strip(b"\0") for p in padded)


@pytest.fixture(scope="module")
def kodak_sized_file(tmp_path_factory):
    """A 768x512 file of the default codec: big enough that reading past a truncated string segfaulted."""
    codec = load_codec()
    return unpack(container.compress(codec, make_image(512, 768, seed=3))), tmp_path_factory.mktemp("forged")


def _run(*argv: str) -> subprocess.CompletedProcess:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600, env=env)


def test_truncated_first_string_in_a_real_process(kodak_sized_file) -> None:
    """The reproduction of the segfault (exit 139, no message, for every length 0-12): now one line and exit 1."""
    file, folder = kodak_sized_file
    forged = folder / "cut0.dpf"
    forged.write_bytes(pack(replace(file, strings=(b"", file.strings[1]))))
    done = _run("-m", "dpfusion", "decompress", str(forged), "-o", str(folder / "cut0.png"))
    assert done.returncode == 1, done.stderr[-500:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dpfusion: error: corrupt file: string 0 is 0 bytes"), lines
    assert not (folder / "cut0.png").exists()


def test_truncated_to_whole_words_decodes_without_reading_past_the_end(kodak_sized_file) -> None:
    """8 or 12 bytes are well formed: nothing shows they are forged, so they decode, to noise, and do not crash."""
    file, folder = kodak_sized_file
    for length in (8, 12):
        (folder / f"cut{length}.dpf").write_bytes(
            pack(replace(file, strings=(file.strings[0][:length], file.strings[1])))
        )
    script = (
        "import sys; from dpfusion import container; from dpfusion.codecs.loading import load_codec; "
        "from dpfusion.codecs.adapter import Encoded; codec = load_codec()\n"
        "for path in sys.argv[1:]:\n"
        "    f = container.parse_for_decoding(open(path, 'rb').read())\n"
        "    print(tuple(codec.decode_latent(Encoded(f.strings, (f.height, f.width))).shape))"
    )
    done = _run("-c", script, str(folder / "cut8.dpf"), str(folder / "cut12.dpf"))
    assert done.returncode == 0, done.stderr[-500:]  # it was -11 (SIGSEGV)
    assert done.stdout.split("\n")[:2] == ["(1, 144, 32, 48)"] * 2
