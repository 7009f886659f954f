"""How far up must a per-image dial's knots be raised towards the blend's PSNR peak? Chosen on validation photos.

A blend's MSE is quadratic in its weight, so its minimiser is exact: ``w* = <x - x(1), x(0) - x(1)> /
|x(0) - x(1)|^2``. Every weight below ``w*`` has a lower PSNR than ``w*`` and, where LPIPS falls along the
blend, a higher LPIPS: a dial position there is wasted. This compares, per rate, the module's
calibration, the per-image fit without a floor, and the fit with its interior knots raised to the
smallest weight whose PSNR is within a slack of the peak (``BlendOptimum.psnr_floor``; slack 0 is ``w*``
itself; the shipped fit uses ``PSNR_SLACK_DB``): evenness at tau = 0.1, ..., 0.9, the interior's LPIPS
above the common-weight blend at no lower PSNR (share of the range, as the reproduction measures it) and
the positions beaten. Every figure is read off each photo's blend scored at 36 weights (linear between
them).

    python benchmarks/image_dial_clamp.py /work/traindata/validation --rates 0,1,3,5 --threads 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from image_dial_probes import DENSE, fitted, validation_arrays  # noqa: E402

import dpfusion  # noqa: E402
from dpfusion.bitstream import DIAL_TAUS, decode_dial, encode_dial  # noqa: E402
from dpfusion.eval.dial_criteria import Point, blend_gap, evenness, wasted  # noqa: E402
from dpfusion.eval.sweep import list_images  # noqa: E402
from dpfusion.fusion.image_dial import PROBE_WEIGHTS, PSNR_SLACK_DB, BlendOptimum, blend_optimum, blend_scores  # noqa: E402,E501
from dpfusion.imageio import load_image  # noqa: E402

TAUS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)
BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
SLACKS_DB = (0.0, 0.002, PSNR_SLACK_DB, 0.01, 0.02, 0.05)


def measure(folder: str, rates: list[float]) -> dict[str, np.ndarray]:
    """``curves``: (images, rates, len(DENSE), 2) LPIPS and PSNR along each photo's blend; ``optimal`` and
    ``spread``: (images, rates), each blend's ``BlendOptimum``."""
    model = dpfusion.load()
    images = list_images(folder)
    curves = np.zeros((len(images), len(rates), len(DENSE), 2))
    optimal, spread = np.zeros((len(images), len(rates))), np.zeros((len(images), len(rates)))
    for i, entry in enumerate(images):
        image = load_image(entry.path)
        for j, rate in enumerate(rates):
            base, real = model.open(model.compress(image, quality=rate)).render_tensors([1.0, 0.0])
            curves[i, j] = blend_scores(image, base, real, DENSE)
            optimum = blend_optimum(image, base, real)
            optimal[i, j], spread[i, j] = optimum.weight, optimum.spread
        print(f"{entry.name}: scored", flush=True)
    return {"curves": curves, "optimal": optimal, "spread": spread}


def points(curves: np.ndarray, dials: list[tuple[tuple[float, ...], np.ndarray]], taus) -> list[Point]:
    """Mean PSNR and LPIPS over photos at each tau, photo i decoded with the dial ``dials[i]``."""
    weights = [np.interp(taus, knots, w) for knots, w in dials]
    lpips = np.mean([np.interp(w, DENSE, c[:, 0]) for c, w in zip(curves, weights, strict=True)], axis=0)
    psnr = np.mean([np.interp(w, DENSE, c[:, 1]) for c, w in zip(curves, weights, strict=True)], axis=0)
    return [Point(t, float(p), float(v)) for t, p, v in zip(taus, psnr, lpips, strict=True)]


def floored(dial: tuple[tuple[float, ...], np.ndarray], floor: float) -> tuple[tuple[float, ...], np.ndarray]:
    """The fitted dial with its interior knots raised to ``floor`` and quantised again, as the sender writes it;
    the module's calibration (no fit written) is left as it is."""
    knots, weights = dial
    if tuple(knots[1:-1]) != DIAL_TAUS:
        return dial
    return knots, np.array([1.0, *decode_dial(encode_dial(np.maximum(weights[1:-1], floor))), 0.0])


def verdict_cell(curves: np.ndarray, dials: list[tuple[tuple[float, ...], np.ndarray]]) -> str:
    """Evenness / interior minus the common-weight blend / positions beaten of photos ``curves`` (photos, DENSE,
    2) decoded with ``dials`` (one per photo)."""
    dial = points(curves, dials, TAUS)
    blend = points(curves, [((0.0, 1.0), np.array([1.0, 0.0]))] * len(curves), tuple(1 - w for w in BLEND_WEIGHTS))
    beaten = ",".join(f"{a:g}>{b:g}" for a, b in wasted(dial)) or "none"
    return f"{evenness(dial):.3f} / {blend_gap(dial, blend)[0]:+.3f} / {beaten}"


def dial_rows(arrays: dict[str, np.ndarray], j: int, module: tuple[tuple[float, ...], np.ndarray]) -> dict[str, list]:
    """Every contender's dials (one per photo) at rate index ``j``; ``module``: the module's (knots, weights) there."""
    at = arrays["curves"][:, j]
    fits = [fitted(c[:, 0], PROBE_WEIGHTS, DIAL_TAUS, module[1]) for c in at]
    rows = {"module calibration": [module] * len(at), "per image, no floor": fits}
    optima = [BlendOptimum(w, v) for w, v in zip(arrays["optimal"][:, j], arrays["spread"][:, j], strict=True)]
    for slack in SLACKS_DB:
        name = f"per image, floor {slack:g} dB below the peak" + (" (shipped)" if slack == PSNR_SLACK_DB else "")
        rows[name] = [floored(d, o.psnr_floor(slack)) for d, o in zip(fits, optima, strict=True)]
    return rows


def main() -> None:
    rates, arrays = validation_arrays(__doc__, measure)
    curves = arrays["curves"]
    module = dpfusion.load().dial
    print(f"{len(curves)} photos; evenness / interior minus blend / positions beaten, per rate")
    table: dict[str, list[str]] = {}
    for j, rate in enumerate(rates):
        for name, dials in dial_rows(arrays, j, (module.knots, module.curve(rate))).items():
            table.setdefault(name, []).append(verdict_cell(curves[:, j], dials))
    print("dial | " + " | ".join(f"rate {r:g}" for r in rates))
    for name, cells in table.items():
        print(f"{name} | " + " | ".join(cells))
    print("w* (mean over photos) per rate: " + " / ".join(f"{m:.3f}" for m in arrays["optimal"].mean(axis=0)))


if __name__ == "__main__":
    main()
