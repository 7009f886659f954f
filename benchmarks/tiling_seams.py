"""How far is a tiled transform from the whole one? PSNR of tiled against untiled, per overlap.

    python benchmarks/tiling_seams.py [--images DIR] [--count 4] [--tile 8] [--overlaps 0,1,2,4] [--rate 3]

Tiling normally starts above ``tiling.TILE_ABOVE_PIXELS``; here it is forced on small tiles
(``--tile`` latent cells, 128 pixels by default) so that a validation photo has many seams.
For each overlap, in the same run: the tau = 1 and tau = 0 decodes of one bitstream with
tiled ``g_s`` against untiled (PSNR and the largest difference of the uint8 images), and the
file written with tiled ``g_a`` against the untiled one (size ratio, PSNR of its decode).
Validation photos, not Kodak: the overlap is chosen from this.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dpfusion
from dpfusion.codecs import tiling
from dpfusion.imageio import image_files, load_image

WHOLE = 1 << 62


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _decodes(model, data: bytes) -> list[np.ndarray]:
    return model.decompress_many(data, [1.0, 0.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="/work/traindata/validation")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--tile", type=int, default=8)
    parser.add_argument("--overlaps", default="0,1,2,4")
    parser.add_argument("--rate", type=float, default=3.0)
    args = parser.parse_args()
    paths = image_files(args.images, "validation photos")[: args.count]
    model = dpfusion.load(quality=args.rate)
    started = time.time()
    tiling.TILE_ABOVE_PIXELS = WHOLE
    whole = [(a, model.compress(a)) for a in map(load_image, paths)]
    whole = [(a, data, _decodes(model, data)) for a, data in whole]
    tiling.TILE_ABOVE_PIXELS, tiling.TILE_LATENT = 0, args.tile
    print(f"{len(paths)} photos, tiles of {args.tile} latent cells; PSNR tiled vs untiled (min over photos)")
    print("overlap | g_s tau 1 PSNR, max diff | g_s tau 0 PSNR, max diff | g_a: bytes ratio, decode PSNR vs untiled")
    for overlap in (int(o) for o in args.overlaps.split(",")):
        tiling.OVERLAP_LATENT = overlap
        rows = []
        for array, data, (one, zero) in whole:
            t_one, t_zero = _decodes(model, data)
            written = model.compress(array)  # tiled g_a
            tiling.TILE_ABOVE_PIXELS = WHOLE
            redecoded = model.decompress(written)  # untiled g_s: only g_a's tiles show
            tiling.TILE_ABOVE_PIXELS = 0
            rows.append(
                (
                    _psnr(one, t_one),
                    np.abs(one.astype(int) - t_one).max(),
                    _psnr(zero, t_zero),
                    np.abs(zero.astype(int) - t_zero).max(),
                    len(written) / len(data),
                    _psnr(one, redecoded),
                )
            )
        r = np.array(rows)
        print(
            f"{overlap} | {r[:, 0].min():.2f} dB, {r[:, 1].max():.0f} | {r[:, 2].min():.2f} dB, {r[:, 3].max():.0f} "
            f"| {r[:, 4].mean():.5f}, {r[:, 5].min():.2f} dB",
            flush=True,
        )
    print(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
