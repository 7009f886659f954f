"""Calibrating the dial on validation photos: equal steps in tau, equal steps in LPIPS.

For each rate, every photo is decoded once at both ends; the blend ``x(1) + w (x(0) - x(1))``
is scored on a grid of weights ``w`` (LPIPS-alex and PSNR, mean over photos). The share of the
LPIPS range a weight travels, ``u(w) = (L(0) - L(w)) / (L(0) - L(1))``, is made monotone and
inverted, so the dial's weight at tau travels the share ``1 - tau``; no interior weight is left below
the mean PSNR's floor, the rising side of the blend where a lower tau is better in both. The photos must be held
out from training and must not be the test set (Kodak): see ``dpfusion data prepare``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dpfusion.api import Model
from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import CONFIG_NAME, read_manifest
from dpfusion.fusion.dial import DialCalibration
from dpfusion.fusion.image_dial import PERCEPTUAL, PROBE_WEIGHTS, blend_scores, floored, mean_psnr_floor
from dpfusion.fusion.image_dial import even_weights as even_weights_of

WEIGHT_GRID = PROBE_WEIGHTS
"""Blend weights scored per rate: the ones a sender scores for a per-image dial, dense near 0."""
CURVES_NAME = "dial_curves.json"
KNOTS = tuple(float(t) for t in np.round(np.linspace(0, 1, 21), 4))


@dataclass(frozen=True)
class BlendCurve:
    """Mean perceptual distance (LPIPS-alex by default) and PSNR of the blend at each weight, for one rate."""

    rate: float
    weights: tuple[float, ...]
    lpips: tuple[float, ...]
    psnr: tuple[float, ...]
    images: int
    metric: str = PERCEPTUAL
    psnr_floor: float = 0.0
    """The smallest weight whose mean PSNR is within ``PSNR_SLACK_DB`` of the blend's best: no interior knot
    goes below it (:func:`~dpfusion.fusion.image_dial.mean_psnr_floor`)."""

    def to_dict(self) -> dict:
        return {"rate": self.rate, "weights": self.weights, self.metric: self.lpips, "psnr": self.psnr,
                "images": self.images, "psnr_floor": self.psnr_floor}  # fmt: skip


@torch.no_grad()
def measure_image_curves(
    model: Model, images: Sequence[np.ndarray], rates: Sequence[float], steps: int, seed: int = 0,
    weights: Sequence[float] = WEIGHT_GRID, metric: str = PERCEPTUAL,
) -> np.ndarray:  # fmt: skip
    """(images, rates, weights, 2): each photo's perceptual distance and PSNR along the blend, per rate.

    The ends come from one decode session per file: the base decode and the module's tau = 0 decode.
    """
    if not images:
        raise DPFusionError("calibration needs at least one photo")
    ends = Model(model.codec, model.fusion, model.schedule, tau_mode="linear")
    scores = np.zeros((len(images), len(rates), len(weights), 2))
    for i, image in enumerate(images):
        for j, rate in enumerate(rates):
            session = ends.open(ends.compress(image, quality=rate))
            base, real = session.render_tensors([1.0, 0.0], steps=steps, seed=seed)
            scores[i, j] = blend_scores(image, base, real, weights, metric)
    return scores


def measure_blend_curves(
    model: Model, images: Sequence[np.ndarray], rates: Sequence[float], steps: int, seed: int = 0,
    weights: Sequence[float] = WEIGHT_GRID, metric: str = PERCEPTUAL,
) -> list[BlendCurve]:  # fmt: skip
    """One :class:`BlendCurve` per rate: the mean over photos of :func:`measure_image_curves`."""
    return mean_curves(measure_image_curves(model, images, rates, steps, seed, weights, metric), rates, weights, metric)


def mean_curves(
    scores: np.ndarray, rates: Sequence[float], weights: Sequence[float] = WEIGHT_GRID, metric: str = PERCEPTUAL
) -> list[BlendCurve]:
    """The per-rate mean of per-photo scores ``(images, rates, weights, 2)``, with its PSNR floor."""
    mean = scores.mean(axis=0)
    floors = [mean_psnr_floor(weights, scores[:, j, :, 1]) for j in range(len(rates))]
    return [
        BlendCurve(float(rate), tuple(weights), tuple(m[:, 0]), tuple(m[:, 1]), len(scores), metric, floor)
        for rate, m, floor in zip(rates, mean, floors, strict=True)
    ]


def even_weights(curve: BlendCurve, knots: Sequence[float] = KNOTS) -> tuple[float, ...]:
    """The weight at each knot whose blend travels the share ``1 - tau`` of the curve's LPIPS range, raised to
    the curve's PSNR floor as the per-image fit is: a knot below it would be beaten by a lower tau in both."""
    return floored(even_weights_of(curve.weights, curve.lpips, knots, f"at rate {curve.rate:g}"), curve.psnr_floor)


def calibrate(curves: Sequence[BlendCurve], knots: Sequence[float] = KNOTS) -> DialCalibration:
    return DialCalibration(tuple(knots), {c.rate: even_weights(c, knots) for c in curves})


def store_calibration(folder: str | Path, calibration: DialCalibration, curves: Sequence[BlendCurve]) -> Path:
    """Write the calibration into the module's ``fusion.json`` (atomically) and the curves beside it."""
    manifest, weights_path = read_manifest(folder)
    config_path = replace(manifest, dial=calibration).save_config(weights_path.with_name(CONFIG_NAME))
    with atomic_path(weights_path.with_name(CURVES_NAME)) as tmp:
        tmp.write_text(json.dumps([c.to_dict() for c in curves], indent=1) + "\n")
    return config_path
