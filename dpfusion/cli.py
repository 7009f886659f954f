"""``dpfusion`` command line: every failure the user can cause ends in one line and exit code 1."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from dpfusion.atomic import write_bytes_atomic  # noqa: E402
from dpfusion.bitstream import unpack  # noqa: E402
from dpfusion.codecs.loading import CODEC_NAMES, DEFAULT_NAME, load_codec  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.imageio import load_image, save_png  # noqa: E402
from dpfusion.pipeline import compress, decode_base  # noqa: E402

Command = Callable[[argparse.Namespace], None]


def _read_bytes(path: str) -> bytes:
    source = Path(path)
    if not source.is_file():
        raise DPFusionError(f"file not found: {source}")
    return source.read_bytes()


def _unit_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {value}")
        return value

    return parse


def cmd_compress(args: argparse.Namespace) -> None:
    image = load_image(args.image)
    codec = load_codec(args.model, args.quality, args.checkpoint)
    started = time.perf_counter()
    data = compress(codec, image, tau=args.suggest_tau)
    elapsed = time.perf_counter() - started
    out = Path(args.output) if args.output else Path(args.image).with_suffix(".dpf")
    write_bytes_atomic(out, data)
    height, width = image.shape[:2]
    print(
        f"{out}: {len(data)} bytes, {8 * len(data) / (height * width):.4f} bpp "
        f"({width}x{height}, {codec.name} q={codec.quality:g}), encoded in {elapsed:.2f} s"
    )


def cmd_decompress(args: argparse.Namespace) -> None:
    data = _read_bytes(args.input)
    if args.tau is not None and args.tau != 1.0:
        raise DPFusionError("tau < 1 needs a fusion module; this build decodes tau = 1 only")
    started = time.perf_counter()
    decoded = decode_base(data, checkpoint=args.checkpoint)
    elapsed = time.perf_counter() - started
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
    save_png(out, decoded.image)
    print(f"{out}: {decoded.file.width}x{decoded.file.height}, tau=1, decoded in {elapsed:.2f} s")


def cmd_info(args: argparse.Namespace) -> None:
    data = _read_bytes(args.input)
    file = unpack(data)
    payload = sum(len(s) for s in file.strings)
    rows = [
        ("file", args.input),
        ("codec", file.codec),
        ("quality", f"{file.quality:g}"),
        ("weights", file.fingerprint.hex()),
        ("image", f"{file.width}x{file.height}"),
        ("suggested tau", "none" if file.tau is None else f"{file.tau:.3f}"),
        ("strings", ", ".join(f"{len(s)} B" for s in file.strings)),
        ("size", f"{len(data)} bytes ({len(data) - payload} container overhead)"),
        ("bpp", f"{8 * len(data) / file.pixels:.4f}"),
    ]
    for key, value in rows:
        print(f"{key:>14}: {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpfusion", description="Decoder-side fidelity/realism dial for learned image codecs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compress", help="encode an image into a .dpf file")
    p.add_argument("image")
    p.add_argument("-o", "--output", help="output .dpf (default: IMAGE with .dpf suffix)")
    p.add_argument("--model", default=DEFAULT_NAME, choices=CODEC_NAMES + ("default",), help="base codec")
    p.add_argument("--quality", type=float, help="zoo quality (1-8) or the default model's rate index")
    p.add_argument("--checkpoint", help="local weights for --model instead of the zoo / embedded ones")
    p.add_argument("--suggest-tau", type=_unit_float("--suggest-tau"), help="tau the sender recommends")
    p.set_defaults(run=cmd_compress)

    p = sub.add_parser("decompress", help="decode a .dpf file to PNG")
    p.add_argument("input")
    p.add_argument("-o", "--output", help="output PNG (default: INPUT with .png suffix)")
    p.add_argument("--tau", type=_unit_float("--tau"), help="1 = base codec, 0 = most realistic")
    p.add_argument("--checkpoint", help="local weights of the codec that wrote the file")
    p.set_defaults(run=cmd_decompress)

    p = sub.add_parser("info", help="show a .dpf header")
    p.add_argument("input")
    p.set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, *rest, **kw: f"dpfusion: warning: {message}\n"
    try:
        args.run(args)
    except DPFusionError as exc:
        print(f"dpfusion: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dpfusion: interrupted", file=sys.stderr)
        return 130
    return 0
