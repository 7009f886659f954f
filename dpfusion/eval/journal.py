"""The append-only JSONL journal that makes a sweep resumable.

Every finished unit of work (one image at one rate, seed and step count, or one image at one
baseline quality) is one JSON line, flushed and fsync-ed before the next unit starts, so a
crash or Ctrl-C loses at most the unit in progress. On restart the journal is read back and
every unit it already holds is skipped. A torn last line (the process died mid-write) is
ignored; any other unreadable line is an error, because it means the file is not ours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dpfusion.errors import DPFusionError

Record = dict[str, Any]


def journal_path(output: str | Path) -> Path:
    """``results.json`` -> ``results.journal.jsonl`` in the same folder."""
    output = Path(output)
    return output.with_name(f"{output.stem}.journal.jsonl")


def read_journal(path: str | Path) -> dict[str, Record]:
    """Records by key; a later record with the same key replaces an earlier one."""
    path = Path(path)
    if not path.is_file():
        return {}
    records: dict[str, Record] = {}
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number == len(lines):  # the last line, torn by a crash mid-write: redo that unit
                continue
            raise DPFusionError(f"{path}:{number}: not a journal line; delete the file to start over") from None
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            raise DPFusionError(f"{path}:{number}: journal line without a key; delete the file to start over")
        records[record["key"]] = record
    return records


class Journal:
    """Appends records durably; holds what is already done."""

    def __init__(self, path: str | Path, fresh: bool = False):
        self.path = Path(path)
        if fresh:
            self.path.unlink(missing_ok=True)
        self.records = read_journal(self.path)
        self._repair_tail()

    def _repair_tail(self) -> None:
        """Cut a torn last line so that the next append starts on a line of its own."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def get(self, key: str) -> Record | None:
        return self.records.get(key)

    def append(self, record: Record) -> None:
        line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise DPFusionError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.records[record["key"]] = record
