"""What the exact integer entropy parameters cost: bpp and PSNR against the float network, side by side.

    python benchmarks/integer_entropy_cost.py [--images DIR] [--rates 0,1,2,3,4,5] [--threads 2]

Each photo is coded by the default model twice at each rate, in the same run: once as dpfusion
codes it (``codecs.integer``: scales and means in fixed point), once with the same weights and
the float hyper-synthesis (CompressAI's own evaluation, what container version 1 used). Bits are
the real entropy-coded bytes; PSNR is of the base decode (tau = 1). Choose nothing on Kodak:
the default images are the validation photos.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.loading import load_codec
from dpfusion.imageio import load_image, to_tensor, to_uint8

ROOT = Path(__file__).resolve().parents[1]


def float_twin(codec: CodecAdapter) -> CodecAdapter:
    """The same codec with its hyper-synthesis evaluated in float (the instance ``forward`` removed)."""
    twin = load_codec(codec.name, codec.quality)
    network: nn.Module = twin.model.h_s
    del network.forward
    return twin


def _code(codec: CodecAdapter, array: np.ndarray) -> tuple[float, float]:
    encoded = codec.encode(to_tensor(array))
    decoded = to_uint8(codec.decompress(Encoded(encoded.strings, encoded.image_size)))
    bits = 8 * sum(len(s) for s in encoded.strings)
    mse = np.mean((decoded.astype(np.float64) - array.astype(np.float64)) ** 2)
    return bits / (array.shape[0] * array.shape[1]), 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="/work/traindata/validation/shared")
    parser.add_argument("--rates", default="0,1,2,3,4,5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    photos = [load_image(p) for p in paths]
    started = time.time()
    print(f"{len(photos)} photos from {args.images}")
    print("rate | bpp float | bpp integer | bpp ratio | PSNR float | PSNR integer | PSNR diff dB")
    for rate in (float(r) for r in args.rates.split(",")):
        integer = load_codec(quality=rate)
        floating = float_twin(integer)
        rows = np.array([[*_code(floating, a), *_code(integer, a)] for a in photos])
        bf, pf, bi, pi = rows.mean(0)
        print(f"{rate:g} | {bf:.4f} | {bi:.4f} | {bi / bf:.5f} | {pf:.3f} | {pi:.3f} | {pi - pf:+.4f}")
    print(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
