"""Atomic writes: all or nothing, the old file survives a failure, permissions follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dpfusion import atomic
from dpfusion.atomic import atomic_path, write_bytes_atomic
from dpfusion.errors import DPFusionError


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_creates_parents_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "out.dpf"
    write_bytes_atomic(target, b"payload")
    assert target.read_bytes() == b"payload"
    assert _names(target.parent) == ["out.dpf"]


def test_replaces_an_existing_file(tmp_path) -> None:
    target = tmp_path / "out.dpf"
    target.write_bytes(b"old")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["out.dpf"]


def test_body_failure_keeps_the_old_file(tmp_path) -> None:
    target = tmp_path / "out.dpf"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.dpf"]


def test_body_failure_without_an_old_file_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "out.dpf"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_rename_failure_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    target = tmp_path / "out.dpf"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(DPFusionError, match="cannot write .*out.dpf: No space left on device"):
        write_bytes_atomic(target, b"data")
    assert _names(tmp_path) == []


def test_target_that_is_a_folder(tmp_path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(DPFusionError, match="cannot write"):
        write_bytes_atomic(tmp_path / "out", b"data")
    assert _names(tmp_path) == ["out"] and _names(tmp_path / "out") == []


def test_parent_that_is_a_file(tmp_path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DPFusionError, match="cannot write"):
        write_bytes_atomic(tmp_path / "file" / "out.dpf", b"data")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(DPFusionError, match="cannot write"):
            write_bytes_atomic(folder / "out.dpf", b"data")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_permissions_follow_the_umask(tmp_path, umask, mask, mode) -> None:
    umask(mask)
    target = tmp_path / "out.dpf"
    write_bytes_atomic(target, b"data")
    assert stat.S_IMODE(target.stat().st_mode) == mode
    with atomic_path(tmp_path / "other.bin") as tmp:  # the temporary file already has them
        assert stat.S_IMODE(tmp.stat().st_mode) == mode
        tmp.write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "other.bin").stat().st_mode) == mode


def test_permissions_survive_a_writer_that_recreates_the_file(tmp_path, umask) -> None:
    umask(0o022)
    with atomic_path(tmp_path / "weights.bin") as tmp:
        tmp.unlink()
        os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
    assert stat.S_IMODE((tmp_path / "weights.bin").stat().st_mode) == 0o644
