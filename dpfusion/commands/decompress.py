"""``dpfusion decompress IN.dpf -o OUT.png [--tau T[,T...]] [--steps S] [--seed N] [--tau-map MASK.png]``"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from dpfusion.api import DEFAULT_STEPS
from dpfusion.atomic import output_target
from dpfusion.commands.common import (
    add_compile,
    add_device,
    add_precision,
    add_sampler,
    add_tau_mode,
    open_for_decoding,
    seed,
    unit_float,
)
from dpfusion.errors import DPFusionError
from dpfusion.fusion.decoding import TauSpec
from dpfusion.imageio import load_image, save_pngs


def tau_list(text: str) -> list[float]:
    """``0.5`` or ``0,0.5,1``: several values decode in one batched pass."""
    parse = unit_float("--tau")
    return [parse(part) for part in text.split(",")]


def load_tau_map(path: str, size: tuple[int, int]) -> np.ndarray:
    """A greyscale image as tau in [0, 1] (white = 1 = fidelity), resized to the image with a warning if needed."""
    grey = np.asarray(Image.fromarray(load_image(path)).convert("L"))
    if grey.shape != size:
        warnings.warn(
            f"{path}: tau map is {grey.shape[1]}x{grey.shape[0]}, the image {size[1]}x{size[0]}: resized to fit",
            stacklevel=2,
        )
        grey = np.asarray(Image.fromarray(grey).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return grey.astype(np.float32) / 255.0


def _suggested_tau(suggested: float | None, has_fusion: bool) -> float:
    """The sender's suggestion when no --tau is given; without a fusion module, tau = 1 with a warning."""
    if suggested is None:
        return 1.0
    if not has_fusion:
        warnings.warn(
            f"sender suggests tau={suggested:.2f} but no fusion module is loaded: decoding tau=1", stacklevel=2
        )
        return 1.0
    return suggested


def _outputs(args: argparse.Namespace, count: int, labels: list[str]) -> list[Path]:
    if args.output and count == 1:
        return [Path(args.output)]
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
    return [out.with_name(f"{out.stem}_tau{label}{out.suffix}") for label in labels]


def run(args: argparse.Namespace) -> None:
    data, file, model = open_for_decoding(args)
    taus: list[TauSpec]
    if args.tau_map:
        if args.tau is not None:
            raise DPFusionError("give either --tau or --tau-map, not both")
        taus, labels = [load_tau_map(args.tau_map, (file.height, file.width))], ["map"]
    else:
        values = args.tau if args.tau is not None else [_suggested_tau(file.tau, model.fusion is not None)]
        taus, labels = list(values), [f"{v:.2f}" for v in values]
    paths, inputs = _outputs(args, len(taus), labels), (args.input, args.tau_map, args.checkpoint)
    for path in paths:  # refuse a bad output before the slow part; the write checks again
        output_target(path, inputs)
    started = time.perf_counter()
    images = model.decompress_many(data, taus, steps=args.steps, seed=args.seed)
    elapsed = time.perf_counter() - started
    save_pngs(paths, images, inputs)
    for path, label in zip(paths, labels, strict=True):
        print(f"{path}: {file.width}x{file.height}, tau={label}")
    print(
        f"decoded {len(images)} image(s) in {elapsed:.2f} s ({args.steps} steps, seed {args.seed}, "
        f"tau mode {args.tau_mode}, sampler {args.sampler or 'the trained one'})"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decompress", help="decode a .dpf file to PNG at one or several tau")
    p.add_argument("input")
    p.add_argument(
        "-o", "--output", help="output PNG (default: INPUT_tauT.png, never the original photo); several tau add _tauT"
    )
    p.add_argument("--tau", type=tau_list, help="1 = base codec, 0 = most realistic; comma list for several")
    p.add_argument("--tau-map", dest="tau_map", help="greyscale PNG: per-pixel tau (white = fidelity)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"DDIM steps (default {DEFAULT_STEPS})")
    p.add_argument("--seed", type=seed, default=0, help="seed of the initial noise, in [0, 2**63 - 1]")
    p.add_argument("--checkpoint", help="local weights of the codec that wrote the file")
    p.add_argument("--fusion", help="fusion module folder (default: the embedded one for the default model)")
    add_tau_mode(p)
    add_sampler(p)
    add_device(p)
    add_compile(p)
    add_precision(p)
    p.set_defaults(run=run)
