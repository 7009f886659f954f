"""Decode latency of every decoding path against the base decode, measured side by side in one run.

    python benchmarks/decode_latency.py [--image KODAK.png] [--rate 3] [--threads 2] [--repeats 5]

One bitstream (kodim23 at rate 3 by default) decoded by: the base codec (tau = 1), the default
tau = 0 decode, 1 and 10 steps, the synthesis adapter on and off, the x0 sampler, and a decode
session re-rendering a new tau once both ends are cached (dial and paper modes); then the parts
of a tau = 0 decode (entropy decoding, g_s, g_s with the adapter's blocks, the condition branch,
the fusion network per step count). Paths run round-robin, one call each per round, the first
round discarded: the ratios to the base decode are side by side, not minutes apart. Then the
peak resident memory of a full tau = 0 decode of a 2048x2048 image, in a child process.
Timings depend on the weights' sizes only, so a randomly initialised fusion module of the
default size is used when none is given (it says so).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import DEFAULT_STEPS, Model, load  # noqa: E402
from dpfusion.codecs.adapter import Encoded  # noqa: E402
from dpfusion.fusion.decoding import condition_of, fuse_latents, synthesize_fused, tau_to_latent_grid  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.samplers import sampler_for  # noqa: E402
from dpfusion.fusion.schedule import NoiseSchedule  # noqa: E402
from dpfusion.imageio import load_image  # noqa: E402

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak" / "kodim23.png"


def _model(args: argparse.Namespace) -> tuple[Model, str]:
    if args.codec_checkpoint:
        model = load("gain-hyperprior", args.rate, args.codec_checkpoint, args.fusion)
    else:
        model = load("default", args.rate, fusion=args.fusion)
    if model.fusion is not None:
        return model, "trained"
    fusion = LatentFusion(model.codec.latent_channels).eval()
    torch.nn.init.normal_(fusion.out.weight, std=0.02)
    return Model(model.codec, fusion, NoiseSchedule()), "random weights, default size"


def _variants(model: Model) -> dict[str, Model]:
    """The same weights decoded other ways: without the synthesis adapter, with the x0 sampler, eq. 4."""
    bare = copy.copy(model.fusion)
    bare._modules = {**model.fusion._modules, "adapter": None}  # the module without its blocks in g_s
    return {
        "no adapter": Model(model.codec, bare, model.schedule, model.tau_mode, model.dial),
        "x0": Model(model.codec, model.fusion, model.schedule, model.tau_mode, model.dial, sampler="x0"),
        "paper": Model(model.codec, model.fusion, model.schedule, "paper", model.dial),
    }


def _paths(model: Model, data: bytes) -> dict[str, Callable[[], object]]:
    variants = _variants(model)
    session, paper = model.open(data), variants["paper"].open(data)
    session.render(0.0)
    taus = itertools.cycle(np.linspace(0.05, 0.95, 19).tolist())
    codec, fusion, y_hat, size = session.codec, model.fusion, session.y_hat, session.image_size
    zero = tau_to_latent_grid(0.0, size, tuple(y_hat.shape[2:]), codec.stride)
    condition = condition_of(fusion, y_hat)
    encoded = Encoded(session.file.strings, size)

    def fusion_steps(steps: int) -> Callable[[], object]:
        sampler = sampler_for(fusion, model.schedule, steps)
        return lambda: fuse_latents(fusion, y_hat, [zero], sampler, 0, condition=condition)

    return {
        "base decode (tau = 1)": lambda: model.decompress(data, 1.0),
        f"tau = 0, {DEFAULT_STEPS} step (default)": lambda: model.decompress(data, 0.0),
        "tau = 0, 10 steps": lambda: model.decompress(data, 0.0, steps=10),
        "tau = 0, adapter off": lambda: variants["no adapter"].decompress(data, 0.0),
        "tau = 0, x0 sampler": lambda: variants["x0"].decompress(data, 0.0),
        "session: open (parse + entropy)": lambda: model.open(data),
        "session: new tau (dial)": lambda: session.render(next(taus)),
        "session: new tau (paper)": lambda: paper.render(next(taus)),
        "part: entropy decoding": lambda: codec.decode_latent(encoded),
        "part: g_s": lambda: codec.synthesize(y_hat, size),
        "part: g_s + adapter (tau = 0)": lambda: synthesize_fused(codec, fusion, y_hat, zero, size),
        "part: condition branch": lambda: condition_of(fusion, y_hat),
        "part: fusion network, 1 step": fusion_steps(1),
        "part: fusion network, 10 steps": fusion_steps(10),
    }


def _side_by_side(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(repeats + 1):
        for name, fn in paths.items():
            started = time.perf_counter()
            fn()
            if round_:  # the first round warms caches and allocators
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _peak_memory_child(args: argparse.Namespace) -> None:
    model, _ = _model(args)
    image = (np.random.default_rng(0).random((2048, 2048, 3)) * 255).astype(np.uint8)
    data = model.compress(image)
    model.decompress(data, tau=0.0, steps=10)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _memory(args: argparse.Namespace) -> None:
    child = [sys.executable, __file__, "--memory-child", "--threads", str(args.threads)]
    for flag in ("codec_checkpoint", "fusion", "rate"):
        if getattr(args, flag) is not None:
            child += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    out = subprocess.run(child, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"peak RSS, 2048x2048 encode + tau=0 decode (10 steps): {json.loads(out)['peak_rss_mib']:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK))
    parser.add_argument("--codec-checkpoint", help="gain-hyperprior weights instead of the embedded default")
    parser.add_argument("--fusion", help="fusion module folder")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        _peak_memory_child(args)
        return
    model, origin = _model(args)
    image = load_image(args.image)
    data = model.compress(image, quality=args.rate)
    print(
        f"image {args.image} ({image.shape[1]}x{image.shape[0]}), {len(data)} bytes, codec {model.codec.name} "
        f"rate {args.rate:g}, fusion: {origin}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats} round-robin rounds"
    )
    times = _side_by_side(_paths(model, data), args.repeats)
    base = times["base decode (tau = 1)"]
    print(f"{'path':<36}{'time ms':>10}{'/ base':>9}")
    for name, seconds in times.items():
        print(f"{name:<36}{seconds * 1e3:>10.1f}{seconds / base:>9.2f}")
    if not args.skip_memory:
        _memory(args)


if __name__ == "__main__":
    main()
