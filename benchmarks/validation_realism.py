"""Realism of fusion modules on the validation photos, side by side: the tool for choosing a module.

    python benchmarks/validation_realism.py VALIDATION_DIR FUSION_DIR [FUSION_DIR ...] [--rates 0,3,5]

The validation photos are small (at most 512 pixels a side): the HiFiC patch grid of the report
cuts one or two 256x256 patches from each, too few for FID or KID to mean anything. Here every
photo is cut into 256x256 patches at a stride of 64 (overlapping; the count is printed) so that the estimates,
still noisy, can rank modules; the report's numbers stay the HiFiC protocol's on Kodak. Each
module decodes the same bitstreams at tau = 0 (tau = 1 is the base codec, the same for all);
PSNR and LPIPS-alex are per-image means, FID and KID are between the patch sets of the decodes
and of the originals. KID is the mean over random halves of the patches, and ``+-`` the spread of five such means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import dpfusion
from dpfusion.imageio import image_files, load_image, to_tensor
from dpfusion.metrics import METRICS
from dpfusion.metrics.fid import frechet_distance
from dpfusion.metrics.inception import inception_features
from dpfusion.metrics.kid import kernel_inception_distance

PATCH, STRIDE = 256, 64


def dense_patches(image: torch.Tensor) -> list[torch.Tensor]:
    """256x256 patches of a (1, 3, H, W) image at a stride of 64, each as its own (1, 3, 256, 256) batch."""
    _, _, height, width = image.shape
    return [
        image[..., top : top + PATCH, left : left + PATCH]
        for top in range(0, height - PATCH + 1, STRIDE)
        for left in range(0, width - PATCH + 1, STRIDE)
    ]


def compress_all(model: dpfusion.Model, photos: list[torch.Tensor], rate: float) -> list[bytes]:
    """The bitstreams, once per rate: the base codec writes them, so every module decodes the same files."""
    arrays = [(photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for photo in photos]
    return [model.compress(array, quality=rate) for array in arrays]


def decode_all(model: dpfusion.Model, files: list[bytes], tau: float) -> list[torch.Tensor]:
    return [to_tensor(model.decompress(data, tau=tau)) for data in files]


def scores(originals: list[torch.Tensor], decoded: list[torch.Tensor], reference: np.ndarray) -> dict[str, float]:
    features = inception_features([p for image in decoded for p in dense_patches(image)], "fid")
    psnr = float(np.mean([float(METRICS["psnr"](d, o)[0]) for d, o in zip(decoded, originals, strict=True)]))
    lpips = float(np.mean([float(METRICS["lpips_alex"](d, o)[0]) for d, o in zip(decoded, originals, strict=True)]))
    half = len(features) // 2  # KID on random halves: their spread says how noisy the estimate is
    kids = [kernel_inception_distance(reference, features, subset_size=half, subsets=20, seed=s) for s in range(5)]
    return {
        "psnr": psnr,
        "lpips_alex": lpips,
        "fid": frechet_distance(reference, features),
        "kid": float(np.mean(kids)),
        "kid_spread": float(np.std(kids)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("validation", type=Path)
    parser.add_argument("fusion", nargs="+", help="fusion module folders; 'shipped' is the embedded one")
    parser.add_argument("--rates", default="0,3,5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photos = [to_tensor(load_image(path)) for path in image_files(args.validation, "validation photos")]
    reference = inception_features([p for image in photos for p in dense_patches(image)], "fid")
    print(f"{len(photos)} photos, {len(reference)} patches of {PATCH}x{PATCH} at stride {STRIDE}")
    print(f"{'module':28s} {'rate':>4s} {'tau':>3s} {'PSNR':>7s} {'LPIPS':>7s} {'FID':>7s} {'KID':>8s} {'+-':>7s}")
    base = dpfusion.load(image_dial=False)  # tau = 0 and 1 do not depend on the dial: no fit to pay for
    models = [(f, base if f == "shipped" else dpfusion.load(fusion=f, image_dial=False)) for f in args.fusion]
    for rate in (float(r) for r in args.rates.split(",")):
        files = compress_all(base, photos, rate)
        rows = [("base codec", 1.0, scores(photos, decode_all(base, files, 1.0), reference))]
        for folder, model in models:
            rows.append((folder, 0.0, scores(photos, decode_all(model, files, 0.0), reference)))
        for name, tau, s in rows:
            print(
                f"{Path(name).name[:28]:28s} {rate:4g} {tau:3g} {s['psnr']:7.3f} {s['lpips_alex']:7.4f} "
                f"{s['fid']:7.2f} {s['kid']:8.5f} {s['kid_spread']:7.5f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
