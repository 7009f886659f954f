"""Peak resident memory of compress and decode against image size: the data behind ``dpfusion/memory.py``.

    python benchmarks/memory_model.py [--threads 2] [--check 6000x4000] [--out memory_model.json]

Each operation runs alone in a fresh child process that reads its own peak RSS
(``memory.peak_resident_bytes``): compress, the
tau = 1 decode and the default tau = 0 decode of the shipped photo ``dpfusion/assets/dandelion.png``
resized to each size (memory does not depend on content). Photos up to ``TILE_ABOVE_PIXELS`` run
whole; above it ``g_a`` and ``g_s`` run over tiles, so the tiled regime is measured on small sizes with
tiling forced on (the tile is the same size whatever the photo). A least-squares line per operation
and regime gives bytes per padded pixel and a fixed part; ``--check`` then measures a larger size the
fit never saw and prints prediction against measurement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

warnings.filterwarnings("ignore", category=FutureWarning)

OPERATIONS = ("compress", "decode_tau1", "decode_tau0")
WHOLE_SIDES = ((512, 512), (1024, 1024), (1448, 1448), (2048, 2048))
TILED_SIDES = ((1024, 1024), (2048, 2048), (2896, 2896))


def _photo(height: int, width: int) -> np.ndarray:
    asset = Path(__file__).resolve().parents[1] / "dpfusion" / "assets" / "dandelion.png"
    return np.asarray(Image.open(asset).convert("RGB").resize((width, height), Image.BICUBIC))


def _child(args: argparse.Namespace) -> None:
    """One CLI command in this process (PNG reading and writing included); prints its peak RSS in bytes."""
    import torch

    from dpfusion import cli
    from dpfusion.codecs import tiling
    from dpfusion.memory import peak_resident_bytes

    if args.force_tiles:
        tiling.TILE_ABOVE_PIXELS = 0
    torch.set_num_threads(args.threads)
    folder = Path(args.file).parent
    if args.op == "compress":
        photo = folder / "photo.png"
        height, width = (int(v) for v in args.size.split("x"))
        Image.fromarray(_photo(height, width)).save(photo)
        command = ["compress", str(photo), "-o", args.file, "--quality", "3"]
    else:
        tau = "1" if args.op == "decode_tau1" else "0"
        command = ["decompress", args.file, "-o", str(folder / f"{args.op}.png"), "--tau", tau]
    if cli.main(command) != 0:
        raise SystemExit(f"dpfusion {' '.join(command)} failed")
    print(json.dumps({"peak": peak_resident_bytes()}))


def _measure(op: str, size: tuple[int, int], file: Path, threads: int, force_tiles: bool) -> dict:
    command = [sys.executable, __file__, "--child", op, "--size", f"{size[0]}x{size[1]}", "--file", str(file)]
    command += ["--threads", str(threads)] + (["--force-tiles"] if force_tiles else [])
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return {**json.loads(out), "seconds": time.perf_counter() - started}


def _sweep(sizes: tuple[tuple[int, int], ...], force_tiles: bool, threads: int, folder: Path) -> list[dict]:
    from dpfusion.imageio import padded_size

    rows = []
    for size in sizes:
        file = folder / f"{size[0]}x{size[1]}_{int(force_tiles)}.dpf"
        padded = padded_size(*size)
        for op in OPERATIONS:
            row = {"op": op, "size": list(size), "padded_pixels": padded[0] * padded[1], "tiled": force_tiles}
            row.update(_measure(op, size, file, threads, force_tiles))
            print(
                f"{op:12s} {size[0]}x{size[1]} {'tiled' if force_tiles else 'whole'}: "
                f"peak {row['peak'] / 2**20:8.0f} MiB "
                f"in {row['seconds']:.0f} s",
                flush=True,
            )
            rows.append(row)
    return rows


def _fit(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per operation and regime: peak = fixed + per_pixel * padded pixels, least squares."""
    fits = {}
    for op in OPERATIONS:
        for tiled in (False, True):
            chosen = [r for r in rows if r["op"] == op and r["tiled"] == tiled]
            pixels = np.array([r["padded_pixels"] for r in chosen], dtype=np.float64)
            peaks = np.array([r["peak"] for r in chosen], dtype=np.float64)
            slope, fixed = np.polyfit(pixels, peaks, 1)
            worst = float(np.max(np.abs(peaks - (fixed + slope * pixels)) / peaks))
            fits[f"{op}/{'tiled' if tiled else 'whole'}"] = {
                "fixed": fixed,
                "per_pixel": slope,
                "worst_rel_error": worst,
            }
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check", default=None, help="HxW measured after the fit and compared with its prediction")
    parser.add_argument("--out", type=Path, default=Path("memory_model.json"))
    parser.add_argument("--child", choices=OPERATIONS, dest="op")
    parser.add_argument("--size")
    parser.add_argument("--file")
    parser.add_argument("--force-tiles", action="store_true")
    args = parser.parse_args()
    if args.op:
        return _child(args)
    with tempfile.TemporaryDirectory() as tmp:
        rows = _sweep(WHOLE_SIDES, False, args.threads, Path(tmp)) + _sweep(TILED_SIDES, True, args.threads, Path(tmp))
        fits = _fit(rows)
        for name, fit in fits.items():
            print(
                f"{name:20s} {fit['fixed'] / 2**20:6.0f} MiB + {fit['per_pixel']:6.1f} B/pixel "
                f"(worst fit error {100 * fit['worst_rel_error']:.1f}%)"
            )
        checks = []
        if args.check:
            size = tuple(int(v) for v in args.check.split("x"))
            checks = _sweep((size,), False, args.threads, Path(tmp))
        args.out.write_text(json.dumps({"rows": rows, "fits": fits, "checks": checks}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
