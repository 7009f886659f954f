"""Decode latency of the fusion path against the base codec, measured side by side in one run.

    python benchmarks/decode_latency.py [--image KODAK.png] [--codec-checkpoint C --fusion F] [--repeats 3]

Prints the base decode time (entropy decoding + g_s), g_s alone, g_s with the
synthesis adapter's blocks when the module has them, the fusion sampler at 1, 5,
10 and 20 steps, and their ratios; then the peak resident
memory of a full tau = 0 decode of a 2048x2048 image, measured in a child
process. Timings depend on the weights' sizes only, so a randomly initialised
fusion module of the default size is used when none is given (it says so).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import Model, load  # noqa: E402
from dpfusion.codecs.adapter import Encoded  # noqa: E402
from dpfusion.fusion.decoding import fuse_latents, synthesize_fused  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.samplers import sampler_for  # noqa: E402
from dpfusion.fusion.schedule import NoiseSchedule  # noqa: E402
from dpfusion.imageio import load_image, to_tensor  # noqa: E402

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak" / "kodim23.png"


def _model(args: argparse.Namespace) -> tuple[Model, str]:
    if args.codec_checkpoint:
        model = load("gain-hyperprior", args.quality, args.codec_checkpoint, args.fusion)
    else:
        model = load("default", args.quality, fusion=args.fusion)
    if model.fusion is not None:
        return model, "trained"
    fusion = LatentFusion(model.codec.latent_channels).eval()
    torch.nn.init.normal_(fusion.out.weight, std=0.02)
    return Model(model.codec, fusion, NoiseSchedule()), "random weights, default size"


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _peak_memory_child(args: argparse.Namespace) -> None:
    model, _ = _model(args)
    image = (np.random.default_rng(0).random((2048, 2048, 3)) * 255).astype(np.uint8)
    data = model.compress(image)
    model.decompress(data, tau=0.0, steps=10)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK))
    parser.add_argument("--codec-checkpoint", help="gain-hyperprior weights instead of the embedded default")
    parser.add_argument("--fusion", help="fusion module folder")
    parser.add_argument("--quality", type=float)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _peak_memory_child(args)
        return

    model, origin = _model(args)
    codec = model.codec
    image = load_image(args.image)
    encoded: Encoded = codec.encode(to_tensor(image))
    y_hat = codec.decode_latent(encoded)
    size = encoded.image_size
    print(
        f"image {args.image} ({size[1]}x{size[0]}), codec {codec.name} rate {codec.quality:g}, "
        f"fusion: {origin}, torch threads {torch.get_num_threads()}"
    )

    base = _median_time(lambda: codec.synthesize(codec.decode_latent(encoded), size), args.repeats)
    synthesis = _median_time(lambda: codec.synthesize(y_hat, size), args.repeats)
    print(f"{'path':<28}{'time ms':>10}{'/ g_s':>9}{'/ base':>9}")
    print(f"{'base decode (entropy + g_s)':<28}{base * 1e3:>10.1f}{base / synthesis:>9.2f}{1.0:>9.2f}")
    print(f"{'g_s alone':<28}{synthesis * 1e3:>10.1f}{1.0:>9.2f}{synthesis / base:>9.2f}")
    tau0 = [torch.zeros(1, 1, 1, 1)]
    rendering = synthesis  # g_s at tau = 0: with a synthesis adapter, its blocks run too
    if model.fusion is not None and model.fusion.adapter is not None:
        rendering = _median_time(lambda: synthesize_fused(codec, model.fusion, y_hat, tau0[0], size), args.repeats)
        ratios = f"{rendering / synthesis:>9.2f}{rendering / base:>9.2f}"
        print(f"{'g_s + adapter (tau = 0)':<28}{rendering * 1e3:>10.1f}{ratios}")
    for steps in (1, 5, 10, 20):
        sampler = _median_time(
            lambda s=steps: fuse_latents(model.fusion, y_hat, tau0, sampler_for(model.fusion, model.schedule, s), 0),
            args.repeats,
        )
        total = base - synthesis + rendering + sampler
        print(
            f"{f'fusion sampler, {steps} steps':<28}{sampler * 1e3:>10.1f}{sampler / synthesis:>9.2f}"
            f"{sampler / base:>9.2f}"
        )
        print(f"{f'fusion decode, {steps} steps':<28}{total * 1e3:>10.1f}{total / synthesis:>9.2f}{total / base:>9.2f}")
    if not args.skip_memory:
        child = [sys.executable, __file__, "--memory-child"]
        for flag in ("codec_checkpoint", "fusion", "quality"):
            if getattr(args, flag) is not None:
                child += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(f"peak RSS, 2048x2048 encode + tau=0 decode (10 steps): {json.loads(out)['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
