"""``dpfusion compress IMAGE -o OUT.dpf``"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dpfusion.api import Model, load
from dpfusion.atomic import output_target, write_bytes_atomic
from dpfusion.bitstream import unpack
from dpfusion.codecs.loading import load_codec
from dpfusion.commands.common import add_image_dial, add_model, unit_float
from dpfusion.imageio import load_image


def run(args: argparse.Namespace) -> None:
    out = Path(args.output) if args.output else Path(args.image).with_suffix(".dpf")
    inputs = (args.image, args.checkpoint, args.fusion)
    output_target(out, inputs)  # refuse a bad output before the slow part; the write checks again
    image = load_image(args.image)
    # Only a fitted dial needs the fusion module; a plain encode loads the codec alone.
    if args.image_dial:
        model = load(args.model, args.quality, args.checkpoint, args.fusion)
    else:
        model = Model(load_codec(args.model, args.quality, args.checkpoint))
    started = time.perf_counter()
    data = model.compress(image, tau=args.suggest_tau)
    elapsed = time.perf_counter() - started
    write_bytes_atomic(out, data, inputs)
    height, width = image.shape[:2]
    codec = model.codec
    dial = ", dial fitted to the image" if unpack(data).dial is not None else ""
    print(
        f"{out}: {len(data)} bytes, {8 * len(data) / (height * width):.4f} bpp "
        f"({width}x{height}, {codec.name} q={codec.quality:g}{dial}), encoded in {elapsed:.2f} s"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="encode an image into a .dpf file")
    p.add_argument("image")
    p.add_argument("-o", "--output", help="output .dpf (default: IMAGE with .dpf suffix)")
    add_model(p)
    p.add_argument("--quality", type=float, help="zoo quality (1-8) or the default model's rate index")
    p.add_argument("--checkpoint", help="local weights for --model instead of the zoo / embedded ones")
    p.add_argument("--fusion", help="fusion module folder whose dial is fitted (default: the embedded one)")
    p.add_argument("--suggest-tau", type=unit_float("--suggest-tau"), help="tau the sender recommends")
    add_image_dial(p)
    p.set_defaults(run=run)
