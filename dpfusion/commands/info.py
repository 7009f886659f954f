"""``dpfusion info IN.dpf``: the header, human-readable."""

from __future__ import annotations

import argparse

from dpfusion.bitstream import unpack
from dpfusion.commands.common import read_bytes


def run(args: argparse.Namespace) -> None:
    data = read_bytes(args.input)
    file = unpack(data)
    payload = sum(len(s) for s in file.strings)
    rows = [
        ("file", args.input),
        ("codec", file.codec),
        ("quality", f"{file.quality:g}"),
        ("weights", file.fingerprint.hex()),
        ("image", f"{file.width}x{file.height}"),
        ("suggested tau", "none" if file.tau is None else f"{file.tau:.3f}"),
        ("dial", "the module's" if file.dial is None else "fitted: " + " ".join(f"{w:.3f}" for w in file.dial)),
        ("strings", ", ".join(f"{len(s)} B" for s in file.strings)),
        ("size", f"{len(data)} bytes ({len(data) - payload} container overhead)"),
        ("bpp", f"{8 * len(data) / file.pixels:.4f}"),
    ]
    for key, value in rows:
        print(f"{key:>14}: {value}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a .dpf header")
    p.add_argument("input")
    p.set_defaults(run=run)
