"""``dpfusion plot RESULTS -o DIR`` (curves) and ``dpfusion plot-grid IMAGE.dpf -o GRID.png`` (tau grid)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dpfusion.api import DEFAULT_STEPS
from dpfusion.commands.common import (
    add_compile,
    add_device,
    add_precision,
    add_sampler,
    add_tau_mode,
    open_for_decoding,
    seed,
)
from dpfusion.commands.decompress import tau_list
from dpfusion.errors import DPFusionError
from dpfusion.eval.grid import parse_crop, tau_grid
from dpfusion.eval.plots import plot_all
from dpfusion.eval.results_io import load_results
from dpfusion.imageio import load_image, to_tensor
from dpfusion.metrics import METRICS


def run(args: argparse.Namespace) -> None:
    results = load_results(args.results[0])
    for path in args.results[1:]:  # extra files add their curves (e.g. another codec's results) to the first
        results = results.merged(load_results(path))
    for path in plot_all(results, args.output):
        print(path)


def _psnr(reference: torch.Tensor, image) -> float:
    return float(METRICS["psnr"](to_tensor(image), reference)[0])


def run_grid(args: argparse.Namespace) -> None:
    data, file, model = open_for_decoding(args)
    taus = args.tau if args.tau is not None else [1.0, 0.5, 0.0]
    started = time.perf_counter()
    images = model.decompress_many(data, taus, steps=args.steps, seed=args.seed)
    elapsed = time.perf_counter() - started
    bpp = 8 * len(data) / file.pixels
    titles = [f"tau = {tau:g}" for tau in taus]
    if args.original:
        original = load_image(args.original)
        if original.shape != images[0].shape:
            raise DPFusionError(
                f"{args.original} is {original.shape[1]}x{original.shape[0]}, the file decodes to "
                f"{file.width}x{file.height}"
            )
        reference = to_tensor(original)
        titles = [f"{title}, {_psnr(reference, image):.2f} dB" for title, image in zip(titles, images, strict=True)]
        images, titles = [original, *images], ["original", *titles]
    crop = parse_crop(args.crop) if args.crop else None
    suptitle = f"{Path(args.input).name}: {file.codec} q={file.quality:g}, {bpp:.3f} bpp, {args.steps} steps"
    out = Path(args.output) if args.output else Path(args.input).with_name(Path(args.input).stem + "_grid.png")
    tau_grid(images, titles, out, crop, suptitle)
    print(f"{out}: {len(taus)} tau decoded in {elapsed:.2f} s")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="rate/tau/steps figures from `dpfusion eval` results")
    p.add_argument("results", nargs="+", help="results.json, CompressAI-style curve files or folders of them")
    p.add_argument("-o", "--output", required=True, help="folder for the PNGs")
    p.set_defaults(run=run)

    p = sub.add_parser("plot-grid", help="one .dpf file decoded at several tau, full images and crops (PNG)")
    p.add_argument("input", help=".dpf file")
    p.add_argument("-o", "--output", help="output PNG (default: INPUT_grid.png)")
    p.add_argument("--tau", type=tau_list, help="comma list of tau (default 1,0.5,0)")
    p.add_argument("--original", help="the source image: shown first, and PSNR in the titles")
    p.add_argument("--crop", help="X,Y,W,H of the enlarged crop (default: a centred square)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"DDIM steps (default {DEFAULT_STEPS})")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--checkpoint", help="local weights of the codec that wrote the file")
    p.add_argument("--fusion", help="fusion module folder (default: the embedded one for the default model)")
    add_tau_mode(p)
    add_sampler(p)
    add_device(p)
    add_compile(p)
    add_precision(p)
    p.set_defaults(run=run_grid)
