"""Which blend weights must the sender score, and at which taus must a file store the weight, to fit a
per-image dial? Chosen on validation photos.

Each photo is scored along the blend of its two ends on a dense grid of weights (the reference
curve). A per-image dial is then fitted from a subset of those weights (the sender's probes) at a
set of tau knots and quantised as a file stores it; the module's calibration is the other contender
(on these photos it is in-sample: it was calibrated on them). Each dial is read off the reference
curve (linear between its weights), and the evenness of the mean curve, ``max |u(tau) - (1 - tau)|``,
is printed at tau = 0.1, ..., 0.9 (the bar's positions) and at every 0.025 (what a slider shows).
Kodak is not for this: run it on ``DATA/validation``.

    python benchmarks/image_dial_probes.py /work/traindata/validation --rates 0,1,3,5 --threads 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dpfusion  # noqa: E402
from dpfusion.bitstream import DIAL_CODE_STEPS, DIAL_TAUS  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.eval.calibration import KNOTS  # noqa: E402
from dpfusion.eval.dial_criteria import Point, evenness  # noqa: E402
from dpfusion.eval.sweep import list_images  # noqa: E402
from dpfusion.fusion.image_dial import PROBE_WEIGHTS, blend_scores, even_weights  # noqa: E402
from dpfusion.imageio import load_image  # noqa: E402

DENSE = tuple(sorted({*PROBE_WEIGHTS, 0.005, 0.015, 0.04, 0.06, 0.085, 0.115, 0.145, 0.18, 0.225, 0.275, 0.35,
                      0.45, 0.55, 0.65, 0.75, 0.85, 0.95}))  # fmt: skip
TENTHS = tuple(float(t) for t in np.round(np.linspace(0.1, 0.9, 9), 4))
CANDIDATES = {
    "19 probes, the file's taus (shipped)": (PROBE_WEIGHTS, DIAL_TAUS),
    "19 probes, every tenth": (PROBE_WEIGHTS, TENTHS),
    "19 probes, every 0.05": (PROBE_WEIGHTS, tuple(float(t) for t in np.round(np.linspace(0.05, 0.95, 19), 4))),
    "19 probes, tenths and 0.05": (PROBE_WEIGHTS, (0.05, *TENTHS)),
    "10 probes, the file's taus": ((0.0, 0.02, 0.05, 0.1, 0.16, 0.25, 0.4, 0.6, 0.8, 1.0), DIAL_TAUS),
    "6 probes, the file's taus": ((0.0, 0.05, 0.16, 0.4, 0.7, 1.0), DIAL_TAUS),
}
FINE = tuple(float(t) for t in np.round(np.linspace(0.025, 0.975, 39), 4))


def dense_curves(folder: str, rates: list[float]) -> np.ndarray:
    """(images, rates, len(DENSE)): each photo's LPIPS along the blend of its two ends."""
    model = dpfusion.load(image_dial=False)
    images = list_images(folder)
    out = np.zeros((len(images), len(rates), len(DENSE)))
    for i, entry in enumerate(images):
        image = load_image(entry.path)
        for j, rate in enumerate(rates):
            base, real = model.open(model.compress(image, quality=rate)).render_tensors([1.0, 0.0])
            out[i, j] = blend_scores(image, base, real, DENSE)[:, 0]
        print(f"{entry.name}: scored", flush=True)
    return out


def fitted(
    curve: np.ndarray, probes: tuple[float, ...], taus: tuple[float, ...], module: np.ndarray
) -> tuple[tuple[float, ...], np.ndarray]:
    """A dial (knots, weights) fitted from the probes only, quantised as a file stores it; where the realistic end
    is no closer than the base, the sender writes none and the module's calibration (``module``) decodes."""
    index = [DENSE.index(w) for w in probes]
    knots = (0.0, *taus, 1.0)
    try:
        weights = np.asarray(even_weights(probes, curve[index], knots, "probe"))
    except DPFusionError:
        return KNOTS, module
    weights[1:-1] = (np.round(np.sqrt(weights[1:-1]) * DIAL_CODE_STEPS) / DIAL_CODE_STEPS) ** 2
    return knots, weights


def mean_evenness(
    curves: np.ndarray, dials: list[tuple[tuple[float, ...], np.ndarray]], at: tuple[float, ...]
) -> float:
    """Evenness of the mean curve at the taus ``at``; image i has the dial (knots, weights) ``dials[i]``."""
    taus = (0.0, *at, 1.0)
    lpips = np.mean(
        [np.interp(np.interp(taus, knots, w), DENSE, c) for c, (knots, w) in zip(curves, dials, strict=True)],
        axis=0,
    )
    return evenness([Point(t, 0.0, float(v)) for t, v in zip(taus, lpips, strict=True)])


def validation_arrays(doc: str, measure: Callable[[str, list[float]], dict[str, np.ndarray]]):
    """The command line of a validation study (folder, rates, threads, cache) and its measured arrays: read
    from ``--cache`` when it exists, else measured and written there."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--rates", default="0,1,3,5")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", help="an .npz of the measured curves: read if present, else written")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates = [float(r) for r in args.rates.split(",")]
    if args.cache and Path(args.cache).is_file():
        return rates, dict(np.load(args.cache))
    arrays = measure(args.folder, rates)
    if args.cache:
        np.savez(args.cache, **arrays)
    return rates, arrays


def main() -> None:
    rates, arrays = validation_arrays(__doc__, lambda folder, rates: {"curves": dense_curves(folder, rates)})
    curves = arrays["curves"]
    module = dpfusion.load(image_dial=False).dial
    print(f"{len(curves)} photos; evenness of the mean curve at tau = 0.1, ..., 0.9 / at every 0.025")
    print("dial | " + " | ".join(f"rate {r:g}" for r in rates))
    rows = {"module calibration (in-sample)": [[(module.knots, module.curve(r))] * len(curves) for r in rates]}
    for name, (probes, taus) in CANDIDATES.items():
        rows[f"per image, {name}"] = [
            [fitted(c, probes, taus, module.curve(r)) for c in curves[:, j]] for j, r in enumerate(rates)
        ]
    for name, per_rate in rows.items():
        cells = [
            f"{mean_evenness(curves[:, j], dials, TENTHS):.3f} / {mean_evenness(curves[:, j], dials, FINE):.3f}"
            for j, dials in enumerate(per_rate)
        ]
        print(f"{name} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
