"""The memory guard: a size whose measured peak does not fit is refused in one line, before any allocation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpfusion import container, memory
from dpfusion.bitstream import pack, unpack
from dpfusion.codecs import tiling
from dpfusion.errors import DPFusionError
from tests.decoding import decode_base

GB = 10**9


@given(pixels=st.integers(1, 64_000_000), more=st.integers(1, 10_000_000))
def test_predicted_peak_grows_with_the_photo_within_each_regime(pixels: int, more: int) -> None:
    for operation in ("compress", "decode"):
        small, large = memory.predicted_peak(operation, pixels), memory.predicted_peak(operation, pixels + more)
        if tiling.needs_tiles(pixels) == tiling.needs_tiles(pixels + more):
            assert large > small > 0


def test_tiling_bounds_the_growth() -> None:
    """Above the tiling threshold a pixel costs less than below it: only full-resolution images grow."""
    for operation in ("compress", "decode"):
        assert memory.PEAKS[operation, True].per_pixel < memory.PEAKS[operation, False].per_pixel


@given(gigabytes=st.floats(1.5, 200.0))
def test_largest_pixels_is_the_limit_the_budget_gives(gigabytes: float) -> None:
    for operation in ("compress", "decode"):
        limit = memory.largest_pixels(operation, gigabytes * GB)
        assert memory.predicted_peak(operation, limit) <= gigabytes * GB
        assert memory.predicted_peak(operation, limit + 64 * 64) > gigabytes * GB or limit == tiling.TILE_ABOVE_PIXELS


def test_cap_refuses_a_large_header_before_entropy_decoding(tiny_gain_codec, tiny_image, monkeypatch) -> None:
    file = unpack(container.compress(tiny_gain_codec, tiny_image))
    claimed = pack(dataclasses.replace(file, height=6000, width=7000))  # valid CRC, under the 64 MP cap

    def never(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(tiny_gain_codec, "decode_latent", never)
    monkeypatch.setenv(memory.MEMORY_CAP_VARIABLE, "2.5")
    with pytest.raises(DPFusionError, match=r"7000x6000 \(padded 7040x6016\) needs about .* GB more to decode") as e:
        decode_base(claimed, codec=tiny_gain_codec)
    assert "DPFUSION_MEMORY_GB leaves" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setattr(memory, "room", lambda: (10**12, "a large machine"))
    with pytest.raises(AssertionError, match="decoding started"):  # the same file passes the guard with room
        decode_base(claimed, codec=tiny_gain_codec)


def test_compress_is_guarded_too(tiny_gain_codec, tiny_image, monkeypatch) -> None:
    monkeypatch.setattr(memory, "room", lambda: (0, "available memory"))
    with pytest.raises(
        DPFusionError,
        match=r"image of 56x40 \(padded 64x64\) needs about .* to compress .*; available memory leaves 0.0 GB",
    ):
        container.compress(tiny_gain_codec, tiny_image)


@pytest.mark.parametrize("text", ["abc", "-1", "0", "nan"])
def test_a_bad_cap_is_one_line(text: str, monkeypatch) -> None:
    monkeypatch.setenv(memory.MEMORY_CAP_VARIABLE, text)
    with pytest.raises(DPFusionError, match=memory.MEMORY_CAP_VARIABLE) as e:
        memory.room()
    assert "\n" not in str(e.value)


def test_a_large_process_still_owes_every_pixel(monkeypatch) -> None:
    """A long-running server holding gigabytes of cached images gets no credit beyond the fixed part."""
    monkeypatch.setattr(memory, "room", lambda: (2 * GB, "available memory"))
    monkeypatch.setattr(memory, "resident_bytes", lambda: 50 * GB)
    with pytest.raises(DPFusionError, match="needs about 15.4 GB more to decode"):
        memory.check_memory("decode", 8000 * 8000, "file")
    memory.check_memory("decode", 512 * 512, "file")  # a small photo fits in the 2 GB left


def test_room_takes_the_tightest_bound(monkeypatch) -> None:
    monkeypatch.setenv(memory.MEMORY_CAP_VARIABLE, "1000")
    assert memory.room()[1] != memory.MEMORY_CAP_VARIABLE  # 1 TB is never the tightest here
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 12345)
    assert memory.room() == (12345, "the cgroup limit")


def test_ulimit_is_a_bound_and_the_cli_says_so_in_one_line(tmp_path, tiny_image) -> None:
    """``ulimit -v 6 GB``: a default-model header of 8000x7900 (63 MP) is refused by name, exit 1, no file."""
    from dpfusion.api import load

    model = load("default", 3.0, image_dial=False)
    file = unpack(model.compress(tiny_image))
    path = tmp_path / "claims.dpf"
    path.write_bytes(pack(dataclasses.replace(file, height=7900, width=8000)))
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({6 * GB}, {6 * GB}))"
    script = f"{limit}; from dpfusion.cli import main; raise SystemExit(main(['decompress', {str(path)!r}]))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("dpfusion: error: file declares an image of 8000x7900") and "ulimit -v" in run.stderr
    assert run.stderr.count("\n") == 1 and not list(tmp_path.glob("*.png"))


def test_measured_peak_is_under_the_model(tmp_path, tiny_image_factory, metric_weights) -> None:
    """The guard's promise, measured: a real 512x384 compress and tau = 0 decode stay under the prediction.

    A compress that fits the dial to the image decodes both ends, so both guards apply to it (the session
    it opens checks the decode's): its bound is the larger of the two."""
    from PIL import Image

    photo, dpf = tmp_path / "photo.png", tmp_path / "photo.dpf"
    Image.fromarray(tiny_image_factory(384, 512)).save(photo)
    for operations, argv in (
        (("compress", "decode"), ["compress", photo, "-o", dpf, "--image-dial"]),
        (("compress",), ["compress", photo, "-o", dpf, "--no-image-dial"]),
        (("decode",), ["decompress", dpf, "--tau", "0"]),
    ):
        script = (
            "import json; from dpfusion.cli import main; from dpfusion.memory import peak_resident_bytes; "
            f"code = main({[str(a) for a in argv]!r}); "
            "print(json.dumps([code, peak_resident_bytes()]))"
        )
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
        code, peak = json.loads(run.stdout.strip().splitlines()[-1])
        assert code == 0, run.stderr
        assert peak < max(memory.predicted_peak(op, 512 * 384) for op in operations), (argv, peak)


@pytest.mark.parametrize(
    "error",
    [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory")],
)
def test_an_allocation_that_fails_anyway_is_one_line(error, tiny_png, monkeypatch, capsys) -> None:
    from dpfusion import cli

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("dpfusion.api.compress", fail)
    assert cli.main(["compress", str(tiny_png), "-o", str(tiny_png.with_suffix(".dpf")), "--no-image-dial"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dpfusion: error: out of memory (") and err.count("\n") == 1
    assert not tiny_png.with_suffix(".dpf").exists()


def test_other_runtime_errors_keep_their_traceback(tiny_png, monkeypatch) -> None:
    from dpfusion import cli

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("dpfusion.api.compress", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["compress", str(tiny_png), "-o", str(tiny_png.with_suffix(".dpf")), "--no-image-dial"])
