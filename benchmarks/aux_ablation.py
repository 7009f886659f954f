"""Stage-1 ablation: which loss terms, with which weights, should train the auxiliary encoder g_a'?

    python benchmarks/aux_ablation.py [--codec-checkpoint runs/base/checkpoint.pt] [--steps 300]
        [--configs 0:0,1:0,1:100]

Trains g_a' from g_a under each loss (LPIPS + rate_weight * bpp + mse_weight * MSE) with the
same seed and crops, then measures on Kodak images with real bitstreams: the aux latent's bpp,
and PSNR / LPIPS-alex of g_s(Q(g_a'(x))), next to the base encoder. g_s(Q(g_a'(x))) is what
tau = 0 is pulled towards by the fusion module's latent term, so the table gives its LPIPS
BD-rate and PSNR loss against the base decode, both charged the base bitstream's bpp.
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
from dpfusion.metrics.bdrate import bd_rate  # noqa: E402
from dpfusion.train.aux_stage import AuxEncoderStage  # noqa: E402
from dpfusion.train.data import CropSampler  # noqa: E402
from dpfusion.train.loop import TrainConfig, run_training  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def parse_configs(text: str) -> dict[str, tuple[float, float]]:
    """'1:100,1:10' -> {'lpips+1rate+100mse': (1.0, 100.0), ...}."""
    configs = {}
    for item in text.split(","):
        rate_weight, mse_weight = (float(v) for v in item.split(":"))
        configs[f"lpips+{rate_weight:g}rate+{mse_weight:g}mse"] = (rate_weight, mse_weight)
    return configs


def evaluate(codec, analysis, images, rates) -> dict[str, list[float]]:
    """Per-rate means over the images."""
    rows: dict[str, list[float]] = {"bpp": [], "psnr": [], "lpips_alex": []}
    for rate in rates:
        at_rate = codec.with_quality(rate)
        bpp, psnr, lpips = [], [], []
        for image in images:
            x = to_tensor(image)
            with at_rate.swapped_analysis(analysis) as coder:
                encoded = coder.encode(x)
            x_hat = at_rate.synthesize(at_rate.decode_latent(encoded), encoded.image_size)
            bpp.append(8 * sum(len(s) for s in encoded.strings) / (image.shape[0] * image.shape[1]))
            psnr.append(float(METRICS["psnr"](x_hat, x)[0]))
            lpips.append(float(METRICS["lpips_alex"](x_hat, x)[0]))
        for key, values in zip(rows, (bpp, psnr, lpips), strict=True):
            rows[key].append(float(np.mean(values)))
    return rows


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
    parser.add_argument("--configs", default="0:0,1:0,1:100", help="rate_weight:mse_weight pairs")
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
    for name, (rate_weight, mse_weight) in parse_configs(args.configs).items():
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
    base = rows["base g_a"]
    print(f"{'encoder':<28}{'bpp':>8}{'PSNR dB':>9}{'LPIPS-alex':>12}{'LPIPS BD-rate':>15}{'PSNR loss':>11}")
    for name, row in rows.items():
        bd = bd_rate((base["bpp"], [-v for v in base["lpips_alex"]]), (base["bpp"], [-v for v in row["lpips_alex"]]))
        loss = np.mean(base["psnr"]) - np.mean(row["psnr"])
        print(
            f"{name:<28}{np.mean(row['bpp']):>8.4f}{np.mean(row['psnr']):>9.2f}{np.mean(row['lpips_alex']):>12.4f}"
            f"{bd:>14.2f}%{loss:>10.2f}"
        )


if __name__ == "__main__":
    main()
