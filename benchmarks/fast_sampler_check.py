"""Does a fast sampler decode as well as the default? PSNR and LPIPS at tau = 0 on the validation photos.

    python benchmarks/fast_sampler_check.py [VALIDATION_DIR] [--rates 0,3,5] [--samplers x0:1,ddim:10]

Each photo is compressed once per rate with the embedded default model; the default decode
(the module's sampler at ``DEFAULT_STEPS``) and each listed ``sampler:steps`` decode the same
bitstream with the same seed; the mean PSNR (RGB, 8-bit) and LPIPS (AlexNet) differences to the
default are printed per rate. Never run on Kodak: this is the check that picks a decoder.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import DEFAULT_STEPS, load  # noqa: E402
from dpfusion.eval.sweep import list_images  # noqa: E402
from dpfusion.imageio import load_image, to_tensor  # noqa: E402
from dpfusion.metrics import METRICS  # noqa: E402

VALIDATION = Path("/work/traindata/validation")


def _scores(image: np.ndarray, original: np.ndarray) -> tuple[float, float]:
    x, ref = to_tensor(image), to_tensor(original)
    return float(METRICS["psnr"](x, ref)[0]), float(METRICS["lpips_alex"](x, ref)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default=str(VALIDATION))
    parser.add_argument("--rates", default="0,3,5")
    parser.add_argument("--samplers", default="x0:1,ddim:10", help="comma list of NAME:STEPS")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    variants = [(name, int(steps)) for name, steps in (s.split(":") for s in args.samplers.split(","))]
    default = load()
    models = {name: load(sampler=name) for name, _ in variants}
    photos = [load_image(item.path) for item in list_images(args.dataset)]
    started = time.perf_counter()
    print(f"{len(photos)} photos; default: {DEFAULT_STEPS} step(s) of the module's sampler; tau = 0, seed 0")
    print(f"{'rate':>5} {'decoder':>10} {'PSNR':>8} {'dPSNR':>8} {'LPIPS':>8} {'dLPIPS':>8}")
    for rate in rates:
        rows = {"default": []} | {f"{n}:{s}": [] for n, s in variants}
        for photo in photos:
            data = default.compress(photo, quality=rate)
            rows["default"].append(_scores(default.decompress(data, 0.0, DEFAULT_STEPS), photo))
            for name, steps in variants:
                rows[f"{name}:{steps}"].append(_scores(models[name].decompress(data, 0.0, steps), photo))
        ref = np.mean(rows["default"], axis=0)
        for label, values in rows.items():
            psnr, lpips = np.mean(values, axis=0)
            print(f"{rate:>5g} {label:>10} {psnr:>8.3f} {psnr - ref[0]:>+8.3f} {lpips:>8.4f} {lpips - ref[1]:>+8.4f}")
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
