"""How far the CPU speed-ups move a tau = 0 image: max abs pixel difference and PSNR, new against old.

    python benchmarks/speedup_exactness.py [KODAK_DIR] [--images kodim01,kodim05,kodim15,kodim23] [--rate 3] [--compile]

Per image and rate, with the embedded default model at 2 threads: the tau = 0 image as it was
decoded before (``x(1) + 1.0 * (x(0) - x(1))``, the dial's blend at weight 1, rounded to 8 bits)
against the realistic end itself (what the session now returns), and, with ``--compile``, the
optional torch.compile of the adapted g_s against the eager decode. The in-place adapter needs no
check here: its test shows it bit for bit equal to the out-of-place formula. A measurement, not a
choice: nothing is tuned on these images.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import load  # noqa: E402
from dpfusion.imageio import load_image, to_uint8  # noqa: E402

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def _compare(a: np.ndarray, b: np.ndarray) -> str:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = "inf" if mse == 0 else f"{10 * np.log10(255**2 / mse):.1f}"
    return f"max |diff| {int(diff.max())}, {int(np.count_nonzero(diff))} values differ, PSNR {psnr} dB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kodak", nargs="?", default=str(KODAK))
    parser.add_argument("--images", default="kodim01,kodim05,kodim15,kodim23")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    model = load(quality=args.rate)
    compiled = load(quality=args.rate, compile=True) if args.compile else None
    for name in args.images.split(","):
        data = model.compress(load_image(Path(args.kodak) / f"{name}.png"), quality=args.rate)
        base, real = model.open(data).render_tensors([1.0, 0.0])
        new, old = to_uint8(real), to_uint8(base + 1.0 * (real - base))
        print(f"{name} rate {args.rate:g}: tau = 0 alone vs the blend at weight 1: {_compare(new, old)}")
        if compiled is not None:
            print(f"{name} rate {args.rate:g}: compiled vs eager: {_compare(compiled.decompress(data, 0.0), new)}")
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
