"""How far can the frozen decoder go? Per-image latent optimisation with the original in hand.

    python benchmarks/latent_oracle.py [--kodak DIR] [--images 1,7,13,23] [--rate 3] [--crop 256] [--iters 120]

For centre crops of Kodak images, decodes the default model's bitstream at tau = 1 (the base
codec) and tau = 0 (the fusion module), then optimises a continuous latent, starting from
``y_hat``, to minimise LPIPS-alex(g_s(y), x) + w * MSE with the decoder frozen. The optimised
latent sees the original image, so it is an upper bound for any fusion module (which sees only
``y_hat``): if the bound sits far below the fusion module's LPIPS, the frozen ``g_s`` is not what
limits tau = 0, the module's training is. Ratios are against the base decode of the same crop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import dpfusion
from dpfusion.fusion.decoding import fuse_latents, tau_to_latent_grid
from dpfusion.fusion.samplers import sampler_for
from dpfusion.imageio import load_image, to_tensor
from dpfusion.losses import build_perceptual_loss
from dpfusion.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]


def _centre_crop(path: Path, size: int) -> torch.Tensor:
    array = load_image(path)
    h, w = array.shape[:2]
    if min(h, w) < size:
        raise SystemExit(f"{path}: {w}x{h} is smaller than --crop {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return to_tensor(array[top : top + size, left : left + size])


def _optimised_latent(decoder, start, x, lpips, mse_weight: float, iters: int, lr: float):
    latent = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr)
    for _ in range(iters):
        out = decoder(latent)
        loss = lpips(out, x) + mse_weight * (out - x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return latent.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--images", default="1,7,13,23", help="Kodak image numbers")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--iters", type=int, default=120)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--mse-weight", type=float, default=30.0, help="w in LPIPS + w * MSE")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = dpfusion.load("default", quality=args.rate)
    codec = model.codec
    if args.crop % codec.stride:
        raise SystemExit(f"--crop must be a multiple of {codec.stride}")
    lpips = build_perceptual_loss("lpips_alex")
    size = (args.crop, args.crop)
    rows = []
    print(f"rate {args.rate:g}, {args.crop}x{args.crop} centre crops, {args.iters} Adam steps, w = {args.mse_weight:g}")
    print(f"{'image':8s} {'base PSNR/LPIPS':>18s} {'tau=0':>18s} {'oracle':>18s}")
    for number in (int(n) for n in args.images.split(",")):
        x = _centre_crop(Path(args.kodak) / f"kodim{number:02d}.png", args.crop)
        y_hat = codec.decode_latent(codec.encode(x))
        tau0 = tau_to_latent_grid(0.0, size, tuple(y_hat.shape[2:]), codec.stride)
        with torch.no_grad():
            fused = fuse_latents(model.fusion, y_hat, [tau0], sampler_for(model.fusion, model.schedule, 10), 0)
        best = _optimised_latent(codec.model.g_s, y_hat, x, lpips, args.mse_weight, args.iters, args.lr)
        row = []
        with torch.no_grad():
            for latent in (y_hat, fused, best):
                out = codec.synthesize(latent, size)
                row.append((float(psnr(out, x)), float(lpips(out, x))))
        rows.append(row)
        print(f"kodim{number:02d}  " + " ".join(f"{p:8.2f} / {lp:.4f}" for p, lp in row), flush=True)
    mean = np.mean(np.array(rows), axis=0)
    print("mean     " + " ".join(f"{p:8.2f} / {lp:.4f}" for p, lp in mean))
    print(
        f"LPIPS / base LPIPS: tau=0 {mean[1, 1] / mean[0, 1]:.3f}, oracle {mean[2, 1] / mean[0, 1]:.3f}; "
        f"PSNR change: tau=0 {mean[1, 0] - mean[0, 0]:+.2f} dB, oracle {mean[2, 0] - mean[0, 0]:+.2f} dB"
    )


if __name__ == "__main__":
    main()
