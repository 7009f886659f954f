"""``dpfusion demo [IMAGE] [-o DIR]``: one bitstream, three decodes, a table and a side-by-side PNG."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dpfusion.api import DEFAULT_STEPS, load
from dpfusion.atomic import write_bytes_atomic
from dpfusion.bitstream import unpack
from dpfusion.codecs.loading import DEFAULT_NAME
from dpfusion.commands.common import add_device, add_image_dial, add_sampler, add_tau_mode, seed
from dpfusion.devices import resolve_device
from dpfusion.errors import DPFusionError
from dpfusion.eval.grid import tau_grid
from dpfusion.imageio import load_image, save_png, to_tensor
from dpfusion.metrics import METRICS, available_metrics

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "dandelion.png"
DEMO_TAUS = (1.0, 0.5, 0.0)
TABLE_METRICS = ("psnr", "ms_ssim", "lpips_alex")


def _scores(image: np.ndarray, original: np.ndarray, usable: list[str], notes: dict[str, str]) -> dict[str, float]:
    """Metric values; a metric that cannot score this image (e.g. MS-SSIM on tiny images) goes to ``notes``."""
    x_hat, x = to_tensor(image), to_tensor(original)
    scores = {}
    for name in usable:
        try:
            scores[name] = float(METRICS[name](x_hat, x)[0])
        except DPFusionError as exc:
            notes[name] = str(exc)
    return scores


def run(args: argparse.Namespace) -> None:
    source = Path(args.image) if args.image else SAMPLE
    out_dir = Path(args.output)
    original = load_image(source)
    print(f"[1/4] loading {DEFAULT_NAME}", flush=True)
    device = resolve_device(args.device)
    model = load(
        DEFAULT_NAME, args.rate, tau_mode=args.tau_mode, device=device, sampler=args.sampler,
        image_dial=args.image_dial,
    )  # fmt: skip
    print(f"[2/4] compressing {source.name} ({original.shape[1]}x{original.shape[0]}) at rate {model.codec.quality:g}")
    data = model.compress(original)
    write_bytes_atomic(out_dir / f"{source.stem}.dpf", data, inputs=(source,))
    bpp = 8 * len(data) / (original.shape[0] * original.shape[1])
    taus = DEMO_TAUS if model.fusion is not None else (1.0,)
    if model.fusion is None:
        print("      no fusion module ships with this build: decoding tau = 1 only")
    availability = available_metrics()
    usable = [name for name in TABLE_METRICS if availability.get(name) is None]
    notes = {name: f"unavailable: {availability.get(name)}" for name in TABLE_METRICS if name not in usable}
    dial = "the sender's dial for this image" if unpack(data).dial is not None else "the module's dial"
    print(f"[3/4] decoding the same {len(data)}-byte bitstream ({dial}) at tau = {', '.join(f'{t:g}' for t in taus)}")
    rows, images = [], []
    for tau in taus:
        started = time.perf_counter()
        image = model.decompress(data, tau=tau, steps=args.steps, seed=args.seed)
        elapsed = time.perf_counter() - started
        save_png(out_dir / f"{source.stem}_tau{tau:.2f}.png", image, inputs=(source,))
        images.append(image)
        rows.append((tau, _scores(image, original, usable, notes), elapsed))
    print(f"[4/4] writing {out_dir}")
    header = f"{'tau':>5} {'bpp':>7} " + " ".join(f"{name:>10}" for name in TABLE_METRICS) + f" {'decode s':>9}"
    print(header)
    for tau, scores, elapsed in rows:
        cells = " ".join(f"{scores[name]:>10.4f}" if name in scores else f"{'n/a':>10}" for name in TABLE_METRICS)
        print(f"{tau:>5.2f} {bpp:>7.4f} {cells} {elapsed:>9.2f}")
    for name, note in notes.items():
        print(f"{name}: n/a ({note})")
    titles = ["original"] + [
        f"tau={tau:g}" + (f"  {scores['psnr']:.2f} dB" if "psnr" in scores else "") for tau, scores, _ in rows
    ]
    grid = tau_grid(
        [original, *images],
        titles,
        out_dir / f"{source.stem}_side_by_side.png",
        suptitle=f"{DEFAULT_NAME}, {bpp:.3f} bpp, {args.steps} steps",
    )
    print(f"side by side: {grid}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="compress once, decode at tau = 1, 0.5, 0 with the embedded model")
    p.add_argument("image", nargs="?", help=f"photo to use (default: the bundled {SAMPLE.name}, CC0)")
    p.add_argument("-o", "--output", default="dpfusion-demo", help="output folder (default: dpfusion-demo)")
    p.add_argument("--rate", type=float, help="rate index of the default model (default: its configured rate)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--seed", type=seed, default=0)
    add_tau_mode(p)
    add_sampler(p)
    add_device(p)
    add_image_dial(p)
    p.set_defaults(run=run)
