"""`dpfusion compress | info | decompress` end to end, in process and once as a real subprocess."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dpfusion import atomic, container
from dpfusion.api import Model
from dpfusion.cli import main
from dpfusion.errors import DPFusionError
from tests.decoding import decode_base


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dpfusion: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def gain_args(tiny_gain_checkpoint) -> list[str]:
    return ["--model", "gain-hyperprior", "--checkpoint", str(tiny_gain_checkpoint)]


@pytest.fixture
def dpf_file(tmp_path, tiny_png, gain_args, capsys) -> Path:
    out = tmp_path / "tiny.dpf"
    code, _, _ = run_cli(capsys, "compress", tiny_png, "-o", out, "--quality", "1", *gain_args)
    assert code == 0
    return out


def test_compress_info_decompress(tmp_path, tiny_png, tiny_image, tiny_gain_codec, gain_args, capsys) -> None:
    out = tmp_path / "out" / "tiny.dpf"
    code, stdout, err = run_cli(capsys, "compress", tiny_png, "-o", out, "--quality", "1", *gain_args)
    assert code == 0 and err == ""
    data = out.read_bytes()
    assert data == container.compress(tiny_gain_codec, tiny_image)  # same codec, same bytes
    match = re.search(r"(\d+) bytes, ([\d.]+) bpp \((\d+)x(\d+), gain-hyperprior q=1\)", stdout)
    assert match, stdout
    size, bpp, width, height = int(match[1]), float(match[2]), int(match[3]), int(match[4])
    assert size == len(data) == out.stat().st_size
    assert (height, width) == tiny_image.shape[:2]
    assert bpp == pytest.approx(8 * len(data) / (height * width), abs=5e-5)

    code, stdout, err = run_cli(capsys, "info", out)
    assert code == 0 and err == ""
    fields = dict(re.findall(r"^\s*([a-z ]+): (.*)$", stdout, flags=re.M))
    assert fields["codec"] == "gain-hyperprior"
    assert fields["quality"] == "1"
    assert fields["weights"] == tiny_gain_codec.fingerprint.hex()
    assert fields["image"] == "56x40"
    assert fields["suggested tau"] == "none"
    assert fields["size"].startswith(f"{len(data)} bytes")
    overhead = int(re.search(r"\((\d+) container overhead\)", fields["size"])[1])
    assert 0 < overhead < 32
    assert float(fields["bpp"]) == pytest.approx(bpp, abs=1e-4)

    expected = decode_base(data, codec=tiny_gain_codec).image
    for extra in ([], ["--tau", "1"]):
        png = tmp_path / f"decoded{len(extra)}.png"
        code, stdout, err = run_cli(capsys, "decompress", out, "-o", png, "--checkpoint", gain_args[-1], *extra)
        assert code == 0 and err == ""
        assert "56x40" in stdout
        assert np.array_equal(np.asarray(Image.open(png)), expected)


def test_default_output_names(tmp_path, tiny_png, gain_args, capsys) -> None:
    assert run_cli(capsys, "compress", tiny_png, *gain_args)[0] == 0
    dpf = tiny_png.with_suffix(".dpf")
    assert dpf.is_file()
    assert run_cli(capsys, "decompress", dpf, "--checkpoint", gain_args[-1])[0] == 0
    assert Image.open(dpf.with_name(dpf.stem + "_tau1.00.png")).size == (56, 40)
    assert tiny_png.is_file() and Image.open(tiny_png).size == (56, 40)  # the original photo is never overwritten


def test_suggested_tau_is_stored(tmp_path, tiny_png, gain_args, capsys) -> None:
    out = tmp_path / "t.dpf"
    assert run_cli(capsys, "compress", tiny_png, "-o", out, "--suggest-tau", "0.25", *gain_args)[0] == 0
    code, stdout, _ = run_cli(capsys, "info", out)
    assert code == 0 and "suggested tau: 0.252" in stdout  # stored in 1/254 steps


def test_tau_below_one_needs_a_fusion_module(dpf_file, tiny_gain_checkpoint, tmp_path, capsys) -> None:
    png = tmp_path / "half.png"
    code, _, err = run_cli(
        capsys, "decompress", dpf_file, "-o", png, "--tau", "0.5", "--checkpoint", tiny_gain_checkpoint
    )
    assert_one_line_error(code, err, "fusion module")
    assert not png.exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["decompress", "x.dpf", "--tau", "2"], "--tau must be in [0, 1], got 2.0"),
        (["decompress", "x.dpf", "--tau", "-0.1"], "--tau must be in [0, 1]"),
        (["decompress", "x.dpf", "--tau", "nan"], "--tau must be in [0, 1], got nan"),
        (["decompress", "x.dpf", "--tau", "half"], "--tau must be a number, got 'half'"),
        (["decompress", "x.dpf", "--tau", "0.5,abc"], "got 'abc'"),
        (["decompress", "x.dpf", "--seed", str(2**64)], f"--seed: must be an integer in [0, 2**63 - 1], got '{2**64}'"),
        (["decompress", "x.dpf", "--seed", "-1"], "--seed: must be an integer in [0, 2**63 - 1]"),
        (["decompress", "x.dpf", "--seed", "2**64"], "got '2**64'"),
        (["demo", "--seed", str(2**63)], "--seed"),
        (["decompress", "x.dpf", "--steps", "ten"], "invalid int value: 'ten'"),
        (["compress", "x.png", "--suggest-tau", "1.5"], "--suggest-tau must be in [0, 1]"),
        (["compress", "x.png", "--model", "jpeg"], "invalid choice: 'jpeg'"),
        (["compress"], "the following arguments are required: image (see dpfusion compress --help)"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command (see dpfusion --help)"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_1(argv, fragment, capsys) -> None:
    code, stdout, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, fragment)
    assert stdout == "" and "usage:" not in err


def test_seed_range_in_the_api(dpf_file, tiny_gain_codec) -> None:
    model = Model(tiny_gain_codec)
    for bad in (-1, 2**63, 2**64, 0.5, True):
        with pytest.raises(DPFusionError, match="seed must be an integer in"):
            model.decompress(dpf_file.read_bytes(), seed=bad)
    assert model.decompress(dpf_file.read_bytes(), seed=2**63 - 1).shape == (40, 56, 3)


def test_help_still_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["decompress", "--help"])
    assert exc.value.code == 0 and "--tau" in capsys.readouterr().out


def test_wrong_model_is_one_line_error(dpf_file, gain_checkpoint_factory, tmp_path, capsys) -> None:
    png = tmp_path / "wrong.png"
    code, _, err = run_cli(capsys, "decompress", dpf_file, "-o", png, "--checkpoint", gain_checkpoint_factory(1))
    assert_one_line_error(code, err, "fingerprint")
    assert not png.exists()


def test_corrupt_file_leaves_no_output(dpf_file, tiny_gain_checkpoint, tmp_path, capsys) -> None:
    data = bytearray(dpf_file.read_bytes())
    data[-10] ^= 0xFF
    dpf_file.write_bytes(bytes(data))
    png = tmp_path / "corrupt.png"
    code, _, err = run_cli(capsys, "decompress", dpf_file, "-o", png, "--checkpoint", tiny_gain_checkpoint)
    assert_one_line_error(code, err, "checksum")
    assert not png.exists()
    code, _, err = run_cli(capsys, "info", dpf_file)
    assert_one_line_error(code, err, "checksum")


def test_compress_failing_at_the_write_leaves_nothing(tmp_path, tiny_png, gain_args, monkeypatch, capsys) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()

    def failing_replace(src, dst):
        assert Path(src).read_bytes()[:3] == b"DPF"  # the data was written, only the rename fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    code, stdout, err = run_cli(capsys, "compress", tiny_png, "-o", folder / "x.dpf", *gain_args)
    assert_one_line_error(code, err, "No space left on device")
    assert stdout == ""
    assert list(folder.iterdir()) == []


def test_unreadable_input_is_one_line(dpf_file, monkeypatch, capsys) -> None:
    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    code, _, err = run_cli(capsys, "info", dpf_file)
    assert_one_line_error(code, err, "cannot read", "Permission denied")


def test_compress_output_permissions_follow_umask(tmp_path, tiny_png, gain_args, capsys) -> None:
    previous = os.umask(0o027)
    try:
        assert run_cli(capsys, "compress", tiny_png, "-o", tmp_path / "p.dpf", *gain_args)[0] == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "p.dpf").stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compress", "{tmp}/absent.png"], ["image not found"]),
        (["info", "{tmp}/absent.dpf"], ["file not found"]),
        (["info", "{png}"], ["bad magic"]),
        (["decompress", "{png}"], ["bad magic"]),
        (["compress", "{png}", "--model", "gain-hyperprior", "--checkpoint", "{tmp}/absent.pt"], ["not found"]),
        (["compress", "{png}", "--model", "gain-hyperprior"], ["needs --checkpoint"]),
        (["compress", "{png}", "--model", "mbt2018-mean", "--quality", "nan"], ["integer --quality"]),
        (["compress", "{png}", "--model", "mbt2018-mean", "--quality", "2.5"], ["integer --quality"]),
        (["compress", "{png}", "--model", "bmshj2018-hyperprior", "--quality", "1"], ["bmshj2018-hyperprior-1-"]),
    ],
)
def test_user_errors_are_one_line(tmp_path, tiny_png, monkeypatch, capsys, argv, fragments) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    argv = [a.format(tmp=tmp_path, png=tiny_png) for a in argv]
    code, stdout, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)
    assert stdout == ""


@pytest.mark.parametrize(("quality", "fragment"), [("9", "rate index"), ("nan", "rate index"), ("-1", "rate index")])
def test_bad_gain_rate_is_one_line(tiny_png, gain_args, capsys, quality, fragment) -> None:
    code, _, err = run_cli(capsys, "compress", tiny_png, "--quality", quality, *gain_args)
    assert_one_line_error(code, err, fragment)
    assert not tiny_png.with_suffix(".dpf").exists()


def test_odd_input_round_trips_with_a_warning(tmp_path, tiny_image_factory, gain_args, capsys) -> None:
    source = tmp_path / "small.png"
    rgba = np.dstack([tiny_image_factory(3, 5), np.full((3, 5), 7, np.uint8)])
    Image.fromarray(rgba).save(source)
    with pytest.warns(UserWarning, match="small.png: alpha channel dropped"):
        assert run_cli(capsys, "compress", source, "-o", tmp_path / "s.dpf", *gain_args)[0] == 0
    code, _, _ = run_cli(
        capsys, "decompress", tmp_path / "s.dpf", "-o", tmp_path / "s.png", "--checkpoint", gain_args[-1]
    )
    assert code == 0
    assert Image.open(tmp_path / "s.png").size == (5, 3)


def test_real_process(tmp_path, tiny_image_factory, tiny_gain_codec, gain_args, gain_checkpoint_factory) -> None:
    """`python -m dpfusion`: clean stderr (warnings formatted as one line each), the same bytes as in process."""
    image = tiny_image_factory(33, 17)
    source = tmp_path / "photo.png"
    Image.fromarray(np.dstack([image, np.full((33, 17), 200, np.uint8)])).save(source)  # RGBA
    command = [sys.executable, "-m", "dpfusion"]
    done = subprocess.run(
        [*command, "compress", str(source), "--quality", "1", *gain_args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "dpfusion: warning: photo.png: alpha channel dropped\n"
    assert "bpp" in done.stdout
    assert source.with_suffix(".dpf").read_bytes() == container.compress(tiny_gain_codec, image)

    done = subprocess.run(
        [*command, "decompress", "photo.dpf", "--checkpoint", str(gain_checkpoint_factory(1))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert_one_line_error(done.returncode, done.stderr, "fingerprint")
    assert done.stdout == ""
    # Nothing was written: the default output name, photo.png, is still the RGBA source.
    assert sorted(p.name for p in tmp_path.glob("photo*")) == ["photo.dpf", "photo.png"]
    assert np.asarray(Image.open(source)).shape == (33, 17, 4)


def test_compress_never_overwrites_its_input(tmp_path, tiny_png, gain_args, capsys) -> None:
    photo = tiny_png.read_bytes()
    code, stdout, err = run_cli(capsys, "compress", tiny_png, "-o", tiny_png, *gain_args)
    assert_one_line_error(code, err, "it is the input")
    assert stdout == "" and tiny_png.read_bytes() == photo
    named_dpf = tmp_path / "photo.dpf"  # a PNG with the wrong suffix: the default output is itself
    named_dpf.write_bytes(photo)
    code, _, err = run_cli(capsys, "compress", named_dpf, *gain_args)
    assert_one_line_error(code, err, "it is the input")
    assert named_dpf.read_bytes() == photo


def test_decompress_never_overwrites_its_input(dpf_file, tiny_gain_checkpoint, capsys) -> None:
    data = dpf_file.read_bytes()
    code, _, err = run_cli(capsys, "decompress", dpf_file, "-o", dpf_file, "--checkpoint", tiny_gain_checkpoint)
    assert_one_line_error(code, err, "it is the input")
    assert dpf_file.read_bytes() == data


def test_output_onto_a_fifo_is_refused(tmp_path, tiny_png, gain_args, capsys) -> None:
    fifo = tmp_path / "sink"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "compress", tiny_png, "-o", fifo, *gain_args)
    assert_one_line_error(code, err, "it is a fifo")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_output_through_a_symlink(tmp_path, tiny_png, gain_args, tiny_gain_codec, tiny_image, capsys) -> None:
    real = tmp_path / "store" / "real.dpf"
    real.parent.mkdir()
    real.write_bytes(b"old")
    (tmp_path / "link.dpf").symlink_to(real)
    assert run_cli(capsys, "compress", tiny_png, "-o", tmp_path / "link.dpf", "--quality", "1", *gain_args)[0] == 0
    assert (tmp_path / "link.dpf").is_symlink()
    assert real.read_bytes() == container.compress(tiny_gain_codec, tiny_image)
