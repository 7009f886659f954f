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


# The output-path policy (issue 18): special files refused, symlinks written through, inputs never replaced.


def test_fifo_target_is_refused_and_stays_a_fifo(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DPFusionError, match=r"cannot write .*pipe: it is a fifo, not a regular file"):
        write_bytes_atomic(fifo, b"data")  # must not open it: that would block
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert _names(tmp_path) == ["pipe"]


def test_symlink_to_a_special_file_is_refused(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link").symlink_to(fifo)
    with pytest.raises(DPFusionError, match="it is a fifo"):
        write_bytes_atomic(tmp_path / "link", b"data")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and (tmp_path / "link").is_symlink()


def test_symlink_is_written_through(tmp_path) -> None:
    real = tmp_path / "real" / "out.dpf"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.dpf"
    link.symlink_to(real)
    write_bytes_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert _names(real.parent) == ["out.dpf"] and _names(tmp_path) == ["link.dpf", "real"]


def test_dangling_symlink_is_refused(tmp_path) -> None:
    link = tmp_path / "link.dpf"
    link.symlink_to(tmp_path / "nowhere.dpf")
    with pytest.raises(DPFusionError, match="symlink to .*nowhere.dpf, which does not exist"):
        write_bytes_atomic(link, b"data")
    assert _names(tmp_path) == ["link.dpf"]


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "dotted"])
def test_an_input_is_never_the_output(tmp_path, alias) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(b"the photo")
    target = {"same": source, "dotted": tmp_path / "." / "photo.png"}.get(alias, tmp_path / "alias.png")
    if alias == "symlink":
        target.symlink_to(source)
    elif alias == "hardlink":
        os.link(source, target)
    with pytest.raises(DPFusionError, match="it is the input .*photo.png"):
        write_bytes_atomic(target, b"bitstream", inputs=(source, None))
    assert source.read_bytes() == b"the photo"
    write_bytes_atomic(tmp_path / "other.dpf", b"bitstream", inputs=(source, tmp_path / "absent.png"))


def test_several_targets_are_all_or_nothing(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"old a")
    targets = [tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(RuntimeError, match="second"), atomic.atomic_paths(targets) as t:
        t[0].write_bytes(b"new a")
        raise RuntimeError("second failed")
    assert _names(tmp_path) == ["a.png"] and (tmp_path / "a.png").read_bytes() == b"old a"
    (tmp_path / "c").mkdir()
    targets = [tmp_path / "b.png", tmp_path / "c"]
    with pytest.raises(DPFusionError, match="it is a folder"), atomic.atomic_paths(targets):
        pytest.fail("the body must not run when one target is refused")
    assert _names(tmp_path) == ["a.png", "c"]


def test_remove_stale_temps_takes_only_writer_temps(tmp_path) -> None:
    keep = [".hidden.tmp", "checkpoint.pt", ".checkpoint.pt.short.tmp", "x.abcd1234.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"keep")
    stale = tmp_path / ".checkpoint.pt.k2j_4h5g.tmp"  # the name mkstemp gives, left by kill -9
    stale.write_bytes(b"half a checkpoint")
    assert atomic.remove_stale_temps(tmp_path) == [stale]
    assert _names(tmp_path) == sorted(keep)
    assert atomic.remove_stale_temps(tmp_path / "absent") == []
