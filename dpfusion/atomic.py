"""Atomic file writes under one output-path policy that every writer of dpfusion follows.

A reader never sees a partial file and a crash leaves the old one. The policy, checked
before anything is written and again just before the rename:

- a target that exists and is not a regular file (folder, fifo, device, socket) is
  refused: renaming over ``/dev/null`` would replace the device with a plain file;
- a symlink is written *through*: the regular file it points at is replaced and the
  link stays a link; a link that points at nothing is refused;
- a target that is one of the command's own inputs (the same file by any name, also via
  a link) is refused, so ``compress photo.png -o photo.png`` cannot destroy the photo.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from dpfusion.errors import DPFusionError

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
"""What ``mkstemp(prefix=".NAME.", suffix=".tmp")`` creates: ``.NAME.`` plus 8 random characters."""
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

PathLike = str | Path


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _same_file(path: Path, other: PathLike) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:  # the input is gone or unreadable: it cannot be the target
        return False


def output_target(target: PathLike, inputs: Sequence[PathLike | None] = ()) -> Path:
    """The regular file a write to ``target`` replaces (symlinks followed); DPFusionError if the policy refuses it."""
    target = Path(target)
    final = Path(os.path.realpath(target)) if target.is_symlink() else target
    if target.is_symlink() and not final.exists():
        raise DPFusionError(f"cannot write {target}: a symlink to {final}, which does not exist")
    try:
        mode = final.stat().st_mode
    except OSError:  # absent (or its folder is): creating it reports the real problem
        return final
    if not stat.S_ISREG(mode):
        raise DPFusionError(f"cannot write {target}: it is {_kind(mode)}, not a regular file")
    for source in inputs:
        if source is not None and _same_file(final, source):
            raise DPFusionError(f"cannot write {target}: it is the input {source}; choose another output")
    return final


def _creation_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(target: Path, final: Path, mode: int) -> Path:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    except OSError as exc:
        raise DPFusionError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    os.chmod(tmp, mode)
    return Path(tmp)


@contextlib.contextmanager
def atomic_paths(targets: Sequence[PathLike], inputs: Sequence[PathLike | None] = ()) -> Iterator[list[Path]]:
    """Yield one temporary path per target; rename them over the targets only when the body succeeded.

    All temporary files are written before any is renamed, so a failure on the second of
    several outputs leaves none of them. Failing to create or rename a file raises
    DPFusionError; exceptions from the body pass through unchanged. Either way no
    temporary file is left.
    """
    targets = [Path(t) for t in targets]
    finals = [output_target(t, inputs) for t in targets]
    mode = _creation_mode()
    temps: list[Path] = []
    try:
        for target, final in zip(targets, finals, strict=True):
            temps.append(_temp_beside(target, final, mode))
        yield temps
        if [output_target(t, inputs) for t in targets] != finals:
            raise DPFusionError(f"cannot write {targets[0]}: an output path changed while it was written")
        for target, final, tmp in zip(targets, finals, temps, strict=True):
            try:
                os.chmod(tmp, mode)  # writers such as safetensors' save_file recreate the file as 0600
                os.replace(tmp, final)
            except OSError as exc:
                raise DPFusionError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: PathLike, inputs: Sequence[PathLike | None] = ()) -> Iterator[Path]:
    """``atomic_paths`` for one target: yield its temporary path."""
    with atomic_paths([target], inputs) as (tmp,):
        yield tmp


def write_bytes_atomic(target: PathLike, data: bytes, inputs: Sequence[PathLike | None] = ()) -> None:
    with atomic_path(target, inputs) as tmp:
        tmp.write_bytes(data)


def remove_stale_temps(folder: PathLike) -> list[Path]:
    """Delete the temporary files that a killed writer left in ``folder``; returns them.

    Only for a folder this process owns (a run folder on resume): a live writer's file
    would go too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if _TEMP_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
