"""Decode times per image on a device against the CPU, and how far the device's pixels are from the CPU's.

    python benchmarks/device_decode.py PHOTO_DIR [--device cuda] [--rate 3] [--repeats 3] [--threads 8]

Each photo is compressed once (on the CPU: the bitstream never depends on the device); then the base
decode (tau = 1) and the default tau = 0 decode run on the CPU and on ``--device``, each timed as the
median of ``--repeats`` after one warm-up (device work synchronised). Prints per image the four
times and, at tau = 1 and tau = 0, the largest 8-bit difference and the PSNR between the CPU and
device images; then the means.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import load  # noqa: E402
from dpfusion.imageio import image_files, load_image  # noqa: E402


def _timed(fn, device: torch.device, repeats: int) -> tuple[float, np.ndarray]:
    image = fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        image = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times), image


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu, other = load("default", args.rate), load("default", args.rate, device=args.device)
    rows = []
    print("image: cpu base / tau0 ms | device base / tau0 ms | tau=1 max diff, PSNR | tau=0 max diff, PSNR")
    for path in image_files(args.photos, "photo folder"):
        data = cpu.compress(load_image(path))
        row = []
        images = {}
        for name, model in (("cpu", cpu), ("device", other)):
            for tau in (1.0, 0.0):
                seconds, images[name, tau] = _timed(
                    lambda m=model, t=tau, d=data: m.decompress(d, tau=t), other.device, args.repeats
                )
                row.append(1000 * seconds)
        for tau in (1.0, 0.0):
            a, b = images["cpu", tau], images["device", tau]
            row += [int(np.abs(a.astype(int) - b.astype(int)).max()), _psnr(a, b)]
        rows.append(row)
        print(
            f"{path.name}: {row[0]:.0f} / {row[1]:.0f} | {row[2]:.1f} / {row[3]:.1f} | "
            f"{row[4]}, {row[5]:.1f} dB | {row[6]}, {row[7]:.1f} dB",
            flush=True,
        )
    mean = np.mean(np.array(rows, dtype=np.float64), axis=0)
    print(
        f"mean over {len(rows)}: cpu {mean[0]:.0f} / {mean[1]:.0f} ms, device {mean[2]:.1f} / {mean[3]:.1f} ms; "
        f"worst diff tau=1 {max(r[4] for r in rows)}, tau=0 {max(r[6] for r in rows)}; "
        f"lowest PSNR tau=1 {min(r[5] for r in rows):.1f} dB, tau=0 {min(r[7] for r in rows):.1f} dB"
    )


if __name__ == "__main__":
    main()
