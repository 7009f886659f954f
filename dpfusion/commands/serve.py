"""``dpfusion serve [--host H] [--port P] [--model NAME] [--device cpu|cuda|auto]``: the dial as a local web page."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dpfusion.api import load
from dpfusion.commands.common import add_compile, add_device, add_image_dial, add_model, add_precision, add_sampler
from dpfusion.devices import resolve_device
from dpfusion.errors import DPFusionError


def run(args: argparse.Namespace) -> None:
    try:
        from dpfusion.serve.app import create_app
        from dpfusion.serve.limits import Limits
        from dpfusion.serve.server import bind, serve, url
    except ImportError as exc:
        missing = exc.name or "a dependency"
        raise DPFusionError(
            f"serve needs the serve extra ({missing} is missing): pip install 'dpfusion[serve]'"
        ) from None
    from dpfusion.serve.service import SAMPLE

    sample = Path(args.sample) if args.sample else SAMPLE
    if not sample.is_file():
        raise DPFusionError(f"sample image not found: {sample}")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1e6), max_pixels=args.max_pixels, queue_size=args.queue)
    device = resolve_device(args.device)
    model = load(
        args.model, args.quality, args.checkpoint, args.fusion, device=device, sampler=args.sampler,
        image_dial=args.image_dial, precision=args.precision,
    )  # fmt: skip
    model.check_image_dial()
    model = model.compile() if args.compile else model
    sock = bind(args.host, args.port)
    app = create_app(model, limits, sample)
    print(f"dpfusion serve: {model.codec.name} at {url(sock)} (Ctrl+C stops)", flush=True)
    serve(app, sock)


def _positive(kind: type) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"--port must be in [0, 65535], got {text!r}")
    return int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a local web page: tau slider, painted tau map, wipe view, metrics")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    add_model(p)
    p.add_argument("--quality", type=float, help="initial rate index or the zoo model's quality")
    p.add_argument("--checkpoint", help="local weights for --model")
    p.add_argument("--fusion", help="fusion module folder (default: the embedded one for the default model)")
    add_sampler(p)
    add_device(p)
    add_compile(p)
    add_precision(p)
    add_image_dial(p)
    p.add_argument("--sample", help="photo offered as the sample (default: the bundled dandelion)")
    p.add_argument("--max-upload-mb", type=_positive(float), default=20.0, help="largest upload (default 20 MB)")
    p.add_argument("--max-pixels", type=_positive(int), default=2_000_000, help="largest image (default 2 MP)")
    p.add_argument("--queue", type=_positive(int), default=4, help="decodes running + waiting before 503")
    p.set_defaults(run=run)
