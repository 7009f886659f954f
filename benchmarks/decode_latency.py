"""Decode latency of every decoding path against the base decode, measured side by side in one run.

    python benchmarks/decode_latency.py [--image KODAK.png] [--rate 3] [--threads 2] [--repeats 5] [--compile]

One bitstream (kodim23 at rate 3 by default) decoded by: the base codec (tau = 1), the default
tau = 0 decode (1 step; its adapter blocks in the default ``auto`` precision, bf16 where the CPU has AMX),
the blocks in fp32 and in bf16, 10 steps, the synthesis adapter on and off, each kept CPU speed-up
switched off (the tau = 0 decode as it was before them: the plain g_s decoded too and blended at
weight 1, the adapter's blocks added out of place), one CPU thread, and with ``--compile`` the
optional torch.compile of the adapted g_s (compiled in the discarded first round); a decode
session re-rendering a new tau once both ends are cached; then the parts of a tau = 0 decode
(entropy decoding, g_s, g_s with the adapter's blocks, the condition branch, one fusion step),
and the sender's encode with and without fitting the dial to the image.
Paths run round-robin, one call each per round, the first round discarded: each round's ratio to
that round's base decode is side by side, not minutes apart; the table gives the median time, the
median ratio and the ratios' range over the rounds. Then the peak resident memory of a full
tau = 0 decode of a 2048x2048 image, in a child process.
Timings depend on the weights' sizes only, so a randomly initialised fusion module of the
default size is used when none is given (it says so). ``benchmarks/decode_profile.py`` splits
the default decode by part with cProfile.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import DEFAULT_STEPS, Model, load  # noqa: E402
from dpfusion.codecs.adapter import Encoded  # noqa: E402
from dpfusion.fusion.decoding import condition_of, fuse_latents, synthesize_fused, tau_to_latent_grid  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.samplers import sampler_for  # noqa: E402
from dpfusion.fusion.schedule import NoiseSchedule  # noqa: E402
from dpfusion.fusion.synthesis_adapter import resolve_precision  # noqa: E402
from dpfusion.imageio import load_image  # noqa: E402
from dpfusion.memory import peak_resident_bytes  # noqa: E402

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


class _OutOfPlaceAdapter(nn.Module):
    """The adapter's blocks as they ran before the in-place speed-up: ``h + s * A(h)``, a new tensor each time."""

    def __init__(self, adapter: nn.Module):
        super().__init__()
        self.adapter = adapter

    def forward(self, g_s: nn.Sequential, latent: torch.Tensor, strength: torch.Tensor, precision: str) -> torch.Tensor:
        if precision != "fp32":
            raise ValueError("the decode before the speed-ups computed its blocks in float32 only")
        blocks = dict(zip(self.adapter.config["positions"], self.adapter.blocks, strict=True))
        h = latent
        for index, child in enumerate(g_s):
            h = child(h)
            if index in blocks:
                block = blocks[index]
                h = h + strength * block.outer(F.leaky_relu(block.inner(h), 0.2))
        return h


def _with_adapter(model: Model, adapter: nn.Module | None, **changes: object) -> Model:
    """The same weights with another adapter (None: without its blocks in g_s) and other Model fields."""
    fusion = copy.copy(model.fusion)
    fusion._modules = {**model.fusion._modules, "adapter": adapter}
    fields = {"tau_mode": model.tau_mode, "dial": model.dial, "sampler": model.sampler, **changes}
    return Model(model.codec, fusion, model.schedule, **fields)


def _variants(model: Model, compiled: bool) -> dict[str, Model]:
    """The same weights decoded other ways: without the synthesis adapter, as before the speed-ups, compiled."""
    adapter = model.fusion.adapter
    variants = {
        "no adapter": _with_adapter(model, None),
        "out of place": _with_adapter(
            model, None if adapter is None else _OutOfPlaceAdapter(adapter), precision="fp32"
        ),
    }
    if compiled:
        variants["compiled"] = _with_adapter(model, copy.deepcopy(adapter)).compile()
    return variants


def _one_thread(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(threads)

    return run


def _decodes(model: Model, data: bytes, compiled: bool) -> dict[str, Callable[[], object]]:
    """Whole decodes, each from the bytes: what a user waits for."""
    variants = _variants(model, compiled)
    full, low = dataclasses.replace(model, precision="fp32"), dataclasses.replace(model, precision="bf16")
    paths = {
        "base decode (tau = 1)": lambda: model.decompress(data, 1.0),
        f"tau = 0, {DEFAULT_STEPS} step (default)": lambda: model.decompress(data, 0.0),
        "tau = 0, blocks in fp32": lambda: full.decompress(data, 0.0),
        "tau = 0, blocks in bf16": lambda: low.decompress(data, 0.0),
        "tau = 0, 10 steps": lambda: model.decompress(data, 0.0, steps=10),
        "tau = 0, adapter off": lambda: variants["no adapter"].decompress(data, 0.0),
        "off: tau = 0 alone (+ plain g_s)": lambda: model.decompress_many(data, [0.0, 1.0]),
        "off: in-place adapter (fp32)": lambda: variants["out of place"].decompress(data, 0.0),
        "off: both (the decode before, fp32)": lambda: variants["out of place"].decompress_many(data, [0.0, 1.0]),
        "base decode, 1 thread": _one_thread(lambda: model.decompress(data, 1.0)),
        "tau = 0, 1 thread": _one_thread(lambda: model.decompress(data, 0.0)),
    }
    if compiled:
        paths["tau = 0, compiled adapter (optional)"] = lambda: variants["compiled"].decompress(data, 0.0)
    return paths


def _encodes(model: Model, image: np.ndarray, rate: float) -> dict[str, Callable[[], object]]:
    """The sender's side, against the same base decode: a plain encode and one that fits the dial to the image."""
    plain, fitted = dataclasses.replace(model, image_dial=False), dataclasses.replace(model, image_dial=True)
    return {
        "encode, plain (--no-image-dial)": lambda: plain.compress(image, quality=rate),
        "encode, dial fitted (default)": lambda: fitted.compress(image, quality=rate),
    }


def _paths(model: Model, data: bytes, compiled: bool) -> dict[str, Callable[[], object]]:
    session = model.open(data)
    session.render_many([0.0, 1.0])
    taus = itertools.cycle(np.linspace(0.05, 0.95, 19).tolist())
    codec, fusion, y_hat, size = session.codec, model.fusion, session.y_hat, session.image_size
    zero = tau_to_latent_grid(0.0, size, tuple(y_hat.shape[2:]), codec.stride)
    condition = condition_of(fusion, y_hat)
    encoded = Encoded(session.file.strings, size)
    sampler = sampler_for(fusion, model.schedule, 1)
    return _decodes(model, data, compiled) | {
        "session: open (parse + entropy)": lambda: model.open(data),
        "session: new tau (dial)": lambda: session.render(next(taus)),
        "part: entropy decoding": lambda: codec.decode_latent(encoded),
        "part: g_s": lambda: codec.synthesize(y_hat, size),
        "part: g_s + adapter (tau = 0)": lambda: synthesize_fused(codec, fusion, y_hat, zero, size, model.precision),
        "part: condition branch": lambda: condition_of(fusion, y_hat),
        "part: fusion network, 1 step": lambda: fuse_latents(fusion, y_hat, [zero], sampler, 0, condition=condition),
    }


def _precision_difference(model: Model, data: bytes) -> None:
    """How far the bf16 blocks move the tau = 0 image from float32, in 8-bit levels and dB."""
    full = dataclasses.replace(model, precision="fp32").decompress(data, 0.0).astype(np.float64)
    low = dataclasses.replace(model, precision="bf16").decompress(data, 0.0).astype(np.float64)
    mse = float(np.mean((full - low) ** 2))
    psnr = "identical" if mse == 0 else f"PSNR between them {10 * np.log10(255**2 / mse):.1f} dB"
    print(f"tau = 0, bf16 against fp32 blocks: max {np.abs(full - low).max():.0f} levels, "
          f"mean {np.abs(full - low).mean():.4f}, {psnr}")  # fmt: skip


def _side_by_side(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per round of every path; the first round (which warms caches, allocators and compiles) is dropped."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(repeats + 1):
        for name, fn in paths.items():
            started = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - started)
    return times


def _report(times: dict[str, list[float]], base_name: str) -> None:
    base = times[base_name]
    print(f"{'path':<40}{'time ms':>10}{'/ base':>9}{'range of / base':>20}")
    for name, values in times.items():
        ratios = [value / b for value, b in zip(values, base, strict=True)]
        spread = f"{min(ratios):.2f} - {max(ratios):.2f}"
        print(f"{name:<40}{statistics.median(values) * 1e3:>10.1f}{statistics.median(ratios):>9.2f}{spread:>20}")


def _peak_memory_child(args: argparse.Namespace) -> None:
    model, _ = _model(args)
    image = (np.random.default_rng(0).random((2048, 2048, 3)) * 255).astype(np.uint8)
    data = model.compress(image)
    model.decompress(data, tau=0.0, steps=10)
    print(json.dumps({"peak_rss_mib": peak_resident_bytes() / 2**20}))


def _memory(args: argparse.Namespace) -> None:
    child = [sys.executable, __file__, "--memory-child", "--threads", str(args.threads)]
    for flag in ("codec_checkpoint", "fusion", "rate"):
        if getattr(args, flag) is not None:
            child += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    out = subprocess.run(child, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    peak = json.loads(out)["peak_rss_mib"]
    print(f"peak RSS, 2048x2048 encode (dial fitted) + tau=0 decode (10 steps): {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK))
    parser.add_argument("--codec-checkpoint", help="gain-hyperprior weights instead of the embedded default")
    parser.add_argument("--fusion", help="fusion module folder")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time the optional torch.compile path")
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
        f"median of {args.repeats} round-robin rounds, adapter precision {model.precision} -> "
        f"{resolve_precision(model.precision, model.device)}"
    )
    _precision_difference(model, data)
    started = time.perf_counter()
    paths = _paths(model, data, args.compile) | _encodes(model, image, args.rate)
    _report(_side_by_side(paths, args.repeats), "base decode (tau = 1)")
    print(f"timing took {time.perf_counter() - started:.0f} s")
    if not args.skip_memory:
        _memory(args)


if __name__ == "__main__":
    main()
