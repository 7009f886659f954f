"""Does clamping a per-image dial at the blend's MSE-optimal weight keep it even? Measured on validation photos.

A blend's MSE is quadratic in its weight, so its minimiser is exact: ``w* = <x - x(1), x(0) - x(1)> /
|x(0) - x(1)|^2``. Every weight below ``w*`` has a lower PSNR than ``w*`` and, where LPIPS falls along the
blend, a higher LPIPS: a dial position there is wasted. This compares, per rate, the module's
calibration, the per-image fit (as ``--image-dial`` writes it) and that fit with its knots up to
tau = 0.9 raised to ``w*``: evenness at tau = 0.1, ..., 0.9, the interior's LPIPS above the common-weight
blend at no lower PSNR (share of the range, as the reproduction measures it) and the positions beaten.
Every figure is read off each photo's blend scored at 36 weights (linear between them).

    python benchmarks/image_dial_clamp.py /work/traindata/validation --rates 0,1,3,5 --threads 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from image_dial_probes import DENSE, fitted, validation_arrays  # noqa: E402

import dpfusion  # noqa: E402
from dpfusion.bitstream import DIAL_TAUS  # noqa: E402
from dpfusion.eval.dial_criteria import Point, blend_gap, evenness, wasted  # noqa: E402
from dpfusion.eval.sweep import list_images  # noqa: E402
from dpfusion.fusion.image_dial import PROBE_WEIGHTS, blend_scores  # noqa: E402
from dpfusion.imageio import load_image, to_tensor  # noqa: E402

TAUS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)
BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)


def mse_optimal(reference: np.ndarray, base: torch.Tensor, real: torch.Tensor) -> float:
    """The blend weight of least MSE against the reference, before rounding, clipped to [0, 1]."""
    x, step = to_tensor(reference) - base, real - base
    return float(np.clip(float((x * step).sum() / (step * step).sum().clamp_min(1e-12)), 0.0, 1.0))


def measure(folder: str, rates: list[float]) -> dict[str, np.ndarray]:
    """``curves``: (images, rates, len(DENSE), 2) LPIPS and PSNR along each photo's blend; ``optimal``:
    (images, rates), each blend's w*."""
    model = dpfusion.load()
    images = list_images(folder)
    curves, optimal = np.zeros((len(images), len(rates), len(DENSE), 2)), np.zeros((len(images), len(rates)))
    for i, entry in enumerate(images):
        image = load_image(entry.path)
        for j, rate in enumerate(rates):
            base, real = model.open(model.compress(image, quality=rate)).render_tensors([1.0, 0.0])
            curves[i, j] = blend_scores(image, base, real, DENSE)
            optimal[i, j] = mse_optimal(image, base, real)
        print(f"{entry.name}: scored", flush=True)
    return {"curves": curves, "optimal": optimal}


def points(curves: np.ndarray, dials: list[tuple[tuple[float, ...], np.ndarray]], taus) -> list[Point]:
    """Mean PSNR and LPIPS over photos at each tau, photo i decoded with the dial ``dials[i]``."""
    weights = [np.interp(taus, knots, w) for knots, w in dials]
    lpips = np.mean([np.interp(w, DENSE, c[:, 0]) for c, w in zip(curves, weights, strict=True)], axis=0)
    psnr = np.mean([np.interp(w, DENSE, c[:, 1]) for c, w in zip(curves, weights, strict=True)], axis=0)
    return [Point(t, float(p), float(v)) for t, p, v in zip(taus, psnr, lpips, strict=True)]


def clamped(dial: tuple[tuple[float, ...], np.ndarray], optimum: float) -> tuple[tuple[float, ...], np.ndarray]:
    knots, weights = dial
    raised = np.where((np.asarray(knots) > 0) & (np.asarray(knots) <= 0.9), np.maximum(weights, optimum), weights)
    return knots, raised


def main() -> None:
    rates, arrays = validation_arrays(__doc__, measure)
    curves, optimal = arrays["curves"], arrays["optimal"]
    module = dpfusion.load().dial
    print(f"{len(curves)} photos; evenness / interior minus blend / positions beaten, per rate")
    for name in ("module calibration", "per image", "per image, clamped at w*"):
        cells = []
        for j, rate in enumerate(rates):
            at = curves[:, j]
            dials = [(module.knots, module.curve(rate))] * len(at)
            if name != "module calibration":
                dials = [fitted(c[:, 0], PROBE_WEIGHTS, DIAL_TAUS, module.curve(rate)) for c in at]
            if name.endswith("w*"):
                dials = [clamped(d, o) for d, o in zip(dials, optimal[:, j], strict=True)]
            dial = points(at, dials, TAUS)
            blend = points(at, [((0.0, 1.0), np.array([1.0, 0.0]))] * len(at), tuple(1 - w for w in BLEND_WEIGHTS))
            gap, _ = blend_gap(dial, blend)
            beaten = ",".join(f"{a:g}>{b:g}" for a, b in wasted(dial)) or "none"
            cells.append(f"{evenness(dial):.3f} / {gap:+.3f} / {beaten}")
        print(f"{name} | " + " | ".join(cells))
    print("w* (mean over photos) per rate: " + " / ".join(f"{m:.3f}" for m in optimal.mean(axis=0)))


if __name__ == "__main__":
    main()
