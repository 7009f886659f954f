"""``dpfusion decompress IN.dpf -o OUT.png [--tau T]``"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dpfusion.commands.common import read_bytes, unit_float
from dpfusion.errors import DPFusionError
from dpfusion.imageio import save_png
from dpfusion.pipeline import decode_base


def run(args: argparse.Namespace) -> None:
    data = read_bytes(args.input)
    if args.tau is not None and args.tau != 1.0:
        raise DPFusionError("tau < 1 needs a fusion module; this build decodes tau = 1 only")
    started = time.perf_counter()
    decoded = decode_base(data, checkpoint=args.checkpoint)
    elapsed = time.perf_counter() - started
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
    save_png(out, decoded.image)
    print(f"{out}: {decoded.file.width}x{decoded.file.height}, tau=1, decoded in {elapsed:.2f} s")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decompress", help="decode a .dpf file to PNG")
    p.add_argument("input")
    p.add_argument("-o", "--output", help="output PNG (default: INPUT with .png suffix)")
    p.add_argument("--tau", type=unit_float("--tau"), help="1 = base codec, 0 = most realistic")
    p.add_argument("--checkpoint", help="local weights of the codec that wrote the file")
    p.set_defaults(run=run)
