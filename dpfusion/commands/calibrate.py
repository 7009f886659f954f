"""``dpfusion calibrate VALIDATION_DIR --fusion DIR``: even steps of the dial, measured on held-out photos."""

from __future__ import annotations

import argparse

import torch

from dpfusion.api import DEFAULT_STEPS, load
from dpfusion.codecs.loading import DEFAULT_DIR, DEFAULT_NAME
from dpfusion.eval.calibration import CURVES_NAME, calibrate, mean_curves, measure_image_curves, store_calibration
from dpfusion.eval.dial_evenness import held_out_evenness
from dpfusion.eval.sweep import list_images
from dpfusion.imageio import load_image


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(DEFAULT_NAME, fusion=args.fusion)
    rates = [float(r) for r in args.rates.split(",")] if args.rates else list(range(model.codec.model.num_rates))
    images = [load_image(image.path) for image in list_images(args.dataset)]
    scores = measure_image_curves(model, images, rates, steps=args.steps, seed=args.seed)
    curves = mean_curves(scores, rates)
    calibration = calibrate(curves)
    held_out = held_out_evenness(scores, rates) if len(images) >= 4 else [None] * len(rates)
    for curve, spread in zip(curves, held_out, strict=True):
        weights = ", ".join(f"{calibration.weight(t, curve.rate):.3f}" for t in (0.1, 0.3, 0.5, 0.7, 0.9))
        estimate = "" if spread is None else f"; evenness on photos left out of a resample {spread:.3f}"
        floor = f"; PSNR floor w >= {curve.psnr_floor:.3f}"
        print(f"rate {curve.rate:g}: w(tau = 0.1, 0.3, 0.5, 0.7, 0.9) = {weights}{floor}{estimate}")
    path = store_calibration(args.fusion, calibration, curves)
    print(f"{path}: dial calibrated on {len(images)} photos ({args.dataset}); curves in {CURVES_NAME}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="calibrate the dial's steps on validation photos (never the test set)")
    p.add_argument("dataset", help="folder of validation photos held out from training (dpfusion data prepare)")
    p.add_argument(
        "--fusion",
        default=str(DEFAULT_DIR),
        help="fusion module folder of the default model to calibrate (default: the embedded one)",
    )
    p.add_argument("--rates", help="comma list of rate indices (default: every rate)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps of the tau = 0 decode ({DEFAULT_STEPS})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(run=run)
