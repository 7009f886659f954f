"""Will a compress or decode of this size fit in memory? A measured model of peak RSS against what the machine has.

Refusing in one line before the transforms allocate is the point: an allocation that fails half
way is a traceback or the kernel's OOM killer, and on Linux often the second. The lines below are
least-squares fits of peak resident memory (bytes) against padded pixels, measured with
``python benchmarks/memory_model.py`` (each CLI command alone in a fresh process, default model,
2 threads); ``tiled`` is the regime above ``tiling.TILE_ABOVE_PIXELS``, where ``g_a`` and ``g_s`` hold
one tile's feature maps, so a pixel costs less (what still grows: see ``PEAKS``). The lines are the
default model's; other codecs are checked against them too (unmeasured: a zoo model of another width
needs its own sweep).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from dpfusion.codecs import tiling
from dpfusion.errors import DPFusionError

Operation = Literal["compress", "decode"]
MEMORY_CAP_VARIABLE = "DPFUSION_MEMORY_GB"
"""Environment variable: at most this many GB for the whole process (a shared server's budget)."""
MARGIN = 1.15
"""Head-room over the fitted lines: their worst fit error is 5.9% and two sweeps of the same sizes
differed by up to 6% (allocator and page-cache noise)."""


@dataclass(frozen=True)
class PeakLine:
    """Peak RSS in bytes = ``fixed + per_pixel * padded pixels``."""

    fixed: float
    per_pixel: float

    def __call__(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels


MIB = 2**20
PEAKS: dict[tuple[Operation, bool], PeakLine] = {
    ("compress", False): PeakLine(872 * MIB, 419.9),
    ("compress", True): PeakLine(1120 * MIB, 48.6),
    ("decode", False): PeakLine(1024 * MIB, 475.3),
    ("decode", True): PeakLine(1133 * MIB, 209.1),
}
"""(operation, tiled) -> line. Decode is the upper envelope of the tau = 1 and tau = 0 fits (whole:
931 MiB + 431.7 B and 1024 MiB + 475.3 B; tiled: 1012 MiB + 209.1 B and 1133 MiB + 193.4 B per pixel),
so one check at parse time, before tau is known, covers both. Above the tiling threshold a decode
still grows by about 200 B per pixel, most of it the rANS guard (``codecs/strings.py``, 176 bytes of zero words
per latent symbol, 0.75 symbols per pixel) exists as a Python copy and the coder's own copy while
the latent is decoded, the price of decoding forged strings safely with CompressAI's coder."""


def predicted_peak(operation: Operation, padded_pixels: int) -> float:
    """Peak RSS in bytes of ``operation`` on a photo of ``padded_pixels`` (margin included)."""
    return MARGIN * PEAKS[operation, tiling.needs_tiles(padded_pixels)](padded_pixels)


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 memory limit (containers), None when there is none."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        used = int((folder / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def resident_bytes() -> int:
    """This process's resident memory now: part of every predicted peak is already paid."""
    return psutil.Process().memory_info().rss


def peak_resident_bytes() -> int:
    """This process's peak RSS since its ``exec`` (Linux ``VmHWM``); ``ru_maxrss`` instead carries
    the parent's size across ``exec``, so a child of a large process would read the parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        hwm = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cap_room(rss: int) -> int | None:
    text = os.environ.get(MEMORY_CAP_VARIABLE)
    if not text:
        return None
    try:
        cap = float(text)
    except ValueError:
        raise DPFusionError(f"{MEMORY_CAP_VARIABLE}={text!r} is not a number of GB") from None
    if not cap > 0:
        raise DPFusionError(f"{MEMORY_CAP_VARIABLE}={text!r} must be a positive number of GB")
    return int(cap * 1e9) - rss


def room() -> tuple[int, str]:
    """Bytes this process can still add, and what bounds it: free RAM, a cgroup, ``ulimit -v`` or the cap."""
    bounds = {"available memory": psutil.virtual_memory().available, "the cgroup limit": _cgroup_room()}
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        bounds["ulimit -v"] = soft - psutil.Process().memory_info().vms
    bounds[MEMORY_CAP_VARIABLE] = _cap_room(resident_bytes())
    name, value = min(((k, v) for k, v in bounds.items() if v is not None), key=lambda item: item[1])
    return max(0, value), name


def largest_pixels(operation: Operation, peak_bytes: float) -> int:
    """The most padded pixels whose predicted peak stays within ``peak_bytes``: the pixel limit this budget gives."""
    best = 0
    for tiled in (False, True):
        line = PEAKS[operation, tiled]
        pixels = int((peak_bytes / MARGIN - line.fixed) / line.per_pixel)
        if tiled and pixels > tiling.TILE_ABOVE_PIXELS:
            best = max(best, pixels)
        elif not tiled:
            best = max(best, min(pixels, tiling.TILE_ABOVE_PIXELS))
    return best


def check_memory(operation: Operation, padded_pixels: int, what: str) -> None:
    """Refuse, in one line, an operation whose predicted peak does not fit in what the machine has left."""
    # What this process holds counts only against the fixed part (libraries, weights): a server's cached
    # images do not make room for a new photo's per-pixel memory.
    paid = min(resident_bytes(), MARGIN * PEAKS[operation, tiling.needs_tiles(padded_pixels)].fixed)
    needed = predicted_peak(operation, padded_pixels) - paid
    left, bound = room()
    if needed > left:
        fits = largest_pixels(operation, left + paid) / 1e6
        raise DPFusionError(
            f"{what} needs about {needed / 1e9:.1f} GB more to {operation} (dpfusion/memory.py, measured); "
            f"{bound} leaves {left / 1e9:.1f} GB here, enough for about {fits:.1f} MP: use a machine with more memory"
        )
