"""Stage-1 ablation: which loss terms should train the auxiliary encoder g_a'?

    python benchmarks/aux_ablation.py [--codec-checkpoint runs/base/checkpoint.pt] [--steps 300]

Trains g_a' from g_a under each loss (LPIPS alone, + rate, + rate + MSE) with the
same seed and crops, then measures on Kodak images with real bitstreams: the aux
latent's bpp, and PSNR / LPIPS-alex of g_s(Q(g_a'(x))), next to the base encoder.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.codecs.loading import load_codec  # noqa: E402
from dpfusion.imageio import load_image, to_tensor  # noqa: E402
from dpfusion.losses import build_perceptual_loss  # noqa: E402
from dpfusion.metrics import METRICS  # noqa: E402
from dpfusion.train.aux_stage import AuxEncoderStage  # noqa: E402
from dpfusion.train.data import CropSampler  # noqa: E402
from dpfusion.train.loop import TrainConfig, run_training  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFIGS = {"lpips": (0.0, 0.0), "lpips+rate": (1.0, 0.0), "lpips+rate+mse": (1.0, 100.0)}


def evaluate(codec, analysis, images, rates) -> dict[str, float]:
    bpp, psnr, lpips = [], [], []
    for rate in rates:
        at_rate = codec.with_quality(rate)
        for image in images:
            x = to_tensor(image)
            with at_rate.swapped_analysis(analysis):
                encoded = at_rate.encode(x)
            x_hat = at_rate.synthesize(at_rate.decode_latent(encoded), encoded.image_size)
            bpp.append(8 * sum(len(s) for s in encoded.strings) / (image.shape[0] * image.shape[1]))
            psnr.append(float(METRICS["psnr"](x_hat, x)[0]))
            lpips.append(float(METRICS["lpips_alex"](x_hat, x)[0]))
    return {"bpp": float(np.mean(bpp)), "psnr": float(np.mean(psnr)), "lpips_alex": float(np.mean(lpips))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec-checkpoint", default="runs/base/checkpoint.pt")
    parser.add_argument("--data", default="/work/traindata", help="training folder (dpfusion data prepare)")
    parser.add_argument("--kodak", default=str(SHARED / "kodak"))
    parser.add_argument("--images", default="1,5,13,21", help="Kodak indices to evaluate")
    parser.add_argument("--rates", default="1,3")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    codec = load_codec("gain-hyperprior", 0, args.codec_checkpoint)
    images = [load_image(Path(args.kodak) / f"kodim{int(i):02d}.png") for i in args.images.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    sampler = CropSampler(args.data, args.crop)
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        checkpoint_every=args.steps,
        log_every=max(1, args.steps // 10),
        threads=args.threads,
    )
    rows = {"base g_a": evaluate(codec, None, images, rates)}
    perceptual = build_perceptual_loss("lpips_alex")
    for name, (rate_weight, mse_weight) in CONFIGS.items():
        torch.manual_seed(0)
        stage = AuxEncoderStage(codec, perceptual, rate_weight, mse_weight)
        with tempfile.TemporaryDirectory() as out:
            run_training(stage, sampler, config, out, progress=False)
        rows[f"g_a' {name}"] = evaluate(codec, stage.aux.eval(), images, rates)
        print(f"done: {name}", flush=True)
    print(
        f"Kodak {args.images}, rates {args.rates}, {args.steps} steps of {args.batch_size}x{args.crop}^2, "
        f"lr {args.lr}, codec {args.codec_checkpoint}"
    )
    print(f"{'encoder':<24}{'bpp':>8}{'PSNR dB':>9}{'LPIPS-alex':>12}")
    for name, row in rows.items():
        print(f"{name:<24}{row['bpp']:>8.4f}{row['psnr']:>9.2f}{row['lpips_alex']:>12.4f}")


if __name__ == "__main__":
    main()
