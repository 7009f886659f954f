"""What both fuzzers count and print: runs, refusals, crashes, hangs, peak memory."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

HANG_SECONDS = 10.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB (Linux reports KB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


@dataclass
class Tally:
    """Counts of one fuzzing session; a crash is any outcome but success or a DPFusionError."""

    name: str
    engine: str
    crash_dir: Path
    started: float = field(default_factory=time.perf_counter)
    runs: int = 0
    refused: int = 0
    crashes: int = 0
    hangs: int = 0
    slowest: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)

    def record(self, elapsed: float, refused: bool) -> None:
        self.runs += 1
        self.refused += refused
        self.slowest = max(self.slowest, elapsed)
        self.hangs += elapsed > HANG_SECONDS

    def crash(self, data: bytes, kind: str, label: str) -> None:
        """Count a crash of ``kind`` and keep its input as ``crash-LABEL.dpf`` to reproduce it."""
        self.crashes += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        (self.crash_dir / f"crash-{label}.dpf").write_bytes(data)

    def merge(self, other: Tally) -> None:
        """Add the counts of a child process's tally."""
        self.runs += other.runs
        self.refused += other.refused
        self.crashes += other.crashes
        self.hangs += other.hangs
        self.slowest = max(self.slowest, other.slowest)
        for kind, count in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + count

    def report(self) -> str:
        seconds = time.perf_counter() - self.started
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.kinds.items())) or "none"
        return (
            f"{self.name} ({self.engine}): {self.runs} runs in {seconds:.0f} s, {self.refused} refused with "
            f"DPFusionError, {self.crashes} crashes ({kinds}), {self.hangs} hangs over {HANG_SECONDS:g} s "
            f"(slowest run {self.slowest:.2f} s), peak RSS {peak_rss_mb():.0f} MB"
        )
