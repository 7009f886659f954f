"""The dial fitted by the sender to one image, carried in the file in a few bytes.

A calibration made on validation photos is even on average, but not on a given photo: on Kodak
at the lowest rate the blend's LPIPS fell much faster for small weights than on any validation
photo (docs/METHOD.md). The sender holds the original, so it can measure this image's own LPIPS
along the blend of the two ends it is about to send and write the weights that make equal steps
in tau equal steps in LPIPS *for this image*. The receiver reads them instead of the module's
calibration; a file without them decodes with the module's calibration, as before.

Evenness alone wastes positions: where a photo's LPIPS falls fast at small weights, an even dial puts
tau = 0.9 below the blend's PSNR peak, and a lower tau then beats it in PSNR and LPIPS both (Kodak at
rates 0-1, docs/METHOD.md). The blend's MSE is quadratic in its weight, so the sender knows that peak in
closed form and raises every interior knot to the smallest weight whose PSNR is within
``PSNR_SLACK_DB`` of it.

Stored by :func:`dpfusion.bitstream.encode_dial`: one byte per interior knot (``DIAL_TAUS``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from dpfusion.bitstream import DIAL_TAUS, decode_dial, encode_dial
from dpfusion.errors import DPFusionError
from dpfusion.fusion.dial import DialCalibration, blend
from dpfusion.imageio import to_tensor, to_uint8
from dpfusion.metrics import METRICS
from dpfusion.metrics.lpips import METRIC_NETS, LPIPSAgainst
from dpfusion.metrics.weights import available_metrics

IMAGE_DIAL_KNOTS = (0.0, *DIAL_TAUS, 1.0)
"""tau knots of a per-image dial: the file stores the weights of the interior ones."""
PROBE_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Blend weights the sender scores: dense near 0, where LPIPS moves fastest."""
PERCEPTUAL = "lpips_alex"
FULL_IMAGE_PIXELS = 1 << 20
"""Images up to this many pixels are scored whole; larger ones on a grid of crops, to bound the sender's cost."""
CROP = 512
CROP_GRID = 4
PSNR_SLACK_DB = 0.005
"""How far below the blend's best PSNR an interior knot may sit: half the 0.01 dB by which the dial's
criteria (``dpfusion.eval.dial_criteria``) let one position beat another, so that no knot below the peak
is beaten in PSNR by one nearer it, on any image or on the mean over images."""
FLOOR_SEARCH_POINTS = 2001
"""Weights searched for the mean PSNR floor of a calibration: steps of 0.0005."""
FIT_SIGNATURE = hashlib.sha256(
    repr((PERCEPTUAL, PROBE_WEIGHTS, IMAGE_DIAL_KNOTS, FULL_IMAGE_PIXELS, CROP, CROP_GRID, PSNR_SLACK_DB)).encode()
).hexdigest()[:12]
"""Names the fitting procedure, so results measured with one are not mistaken for another's."""


def blend_scores(
    reference: np.ndarray, base: Tensor, real: Tensor, weights: Sequence[float], metric: str = PERCEPTUAL
) -> np.ndarray:
    """(len(weights), 2): the perceptual distance and PSNR of each blend against the reference.

    The blends are made exactly as the decoder makes them: from the two ends before rounding, then
    rounded to 8 bits once. Blending already-rounded ends adds a second rounding that LPIPS notices
    (0.0005 on one photo at rate 5, a tenth of the dial's range there) and a calibration would then be
    even for images the decoder never shows.
    """
    x = to_tensor(reference)
    distance = _against(metric, x)
    out = []
    for w in weights:
        blended = to_tensor(to_uint8(blend(base, real, float(w))))
        out.append((float(distance(blended)[0]), float(METRICS["psnr"](blended, x)[0])))
    return np.asarray(out)


def _against(metric: str, reference: Tensor) -> Callable[[Tensor], Tensor]:
    """``metric`` against a fixed reference; LPIPS embeds the reference once for all the blends."""
    if metric in METRIC_NETS:
        return LPIPSAgainst(reference, METRIC_NETS[metric])
    return lambda x: METRICS[metric](x, reference)


def even_weights(
    grid: Sequence[float], distances: Sequence[float], knots: Sequence[float], what: str
) -> tuple[float, ...]:
    """The blend weight at each tau knot that travels the share ``1 - tau`` of the distance's range.

    ``distances`` are scored at the blend weights ``grid`` (0 first, 1 last); the share travelled is made
    monotone (a blend may score better than the realistic end itself) before it is inverted.
    """
    lpips = np.asarray(distances, dtype=np.float64)
    span = lpips[0] - lpips[-1]
    if span <= 0:
        raise DPFusionError(f"{what}: the realistic end has no lower LPIPS than the base")
    share = np.maximum.accumulate(np.clip((lpips[0] - lpips) / span, 0.0, 1.0))
    share[-1] = 1.0
    weights_grid = np.asarray(grid, dtype=np.float64)
    # np.interp needs rising x: drop the flat stretches, keep the first weight of each
    keep = np.concatenate([[True], np.diff(share) > 0])
    weights = np.interp(1.0 - np.asarray(knots), share[keep], weights_grid[keep])
    weights[0], weights[-1] = 1.0, 0.0
    return tuple(float(w) for w in np.minimum.accumulate(weights))


@dataclass(frozen=True)
class BlendOptimum:
    """Where the blend ``base + w (real - base)`` is closest to the original in MSE."""

    weight: float
    """``w*``, the MSE-optimal weight, clipped to [0, 1]."""
    spread: float
    """The MSE at ``w*`` over the mean squared difference of the two ends: how flat the PSNR is around it."""

    def psnr_floor(self, slack_db: float = PSNR_SLACK_DB) -> float:
        """The smallest weight whose blend's PSNR is within ``slack_db`` of the PSNR at ``w*``.

        ``MSE(w) = MSE(w*) + |real - base|^2 (w - w*)^2`` per pixel, so the PSNR falls by ``slack_db`` at
        ``|w - w*| = sqrt(spread (10^(slack_db / 10) - 1))``.
        """
        return max(0.0, self.weight - math.sqrt(self.spread * (10.0 ** (slack_db / 10.0) - 1.0)))


def floored(weights: Sequence[float], floor: float) -> tuple[float, ...]:
    """``weights`` (tau = 0 first, tau = 1 last) with every interior one raised to at least ``floor``.

    A weight below the floor sits on the rising side of the blend's PSNR curve, where a lower tau beats it in
    PSNR and LPIPS both; the ends stay the module's two decodes.
    """
    inner = tuple(max(float(w), floor) for w in weights[1:-1])
    return (float(weights[0]), *inner, float(weights[-1]))


def mean_psnr_floor(grid: Sequence[float], psnr: np.ndarray, slack_db: float = PSNR_SLACK_DB) -> float:
    """The smallest blend weight whose PSNR, averaged over photos, is within ``slack_db`` of its best.

    ``psnr`` is ``(photos, len(grid))``, measured on the blends. A photo's blend MSE is quadratic in the
    weight (see :class:`BlendOptimum`), so a least-squares quadratic through its measured MSEs gives its PSNR
    between the grid's weights, and the mean is searched on a fine grid: the grid alone is too coarse near a
    peak that moves a few thousandths of a dB.
    """
    weights = np.asarray(grid, dtype=np.float64)
    if len(weights) < 3:
        return 0.0
    mse = 10.0 ** (-np.asarray(psnr, dtype=np.float64) / 10.0)
    design = np.stack([np.ones_like(weights), weights, weights * weights], axis=1)
    coefficients = np.linalg.lstsq(design, mse.T, rcond=None)[0]
    fine = np.linspace(0.0, 1.0, FLOOR_SEARCH_POINTS)
    fitted = np.stack([np.ones_like(fine), fine, fine * fine], axis=1) @ coefficients
    mean = (-10.0 * np.log10(np.maximum(fitted, 1e-30))).mean(axis=1)
    return float(fine[np.argmax(mean >= mean.max() - slack_db)])


def blend_optimum(reference: np.ndarray, base: Tensor, real: Tensor) -> BlendOptimum:
    """The blend's MSE-optimal weight and spread against the original, from the ends before rounding."""
    residual, step = to_tensor(reference) - base, real - base
    power = float((step * step).mean())
    if power <= 0.0:
        return BlendOptimum(0.0, 0.0)
    weight = min(1.0, max(0.0, float((residual * step).mean()) / power))
    return BlendOptimum(weight, float(((residual - weight * step) ** 2).mean()) / power)


def fit_unavailable() -> str | None:
    """None when the fit's metric can run, else why not (its weights are not prepared)."""
    return available_metrics()[PERCEPTUAL]


def probe_regions(height: int, width: int) -> list[tuple[slice, slice]]:
    """Where the sender scores: the whole image, or a grid of crops once it passes ``FULL_IMAGE_PIXELS``."""
    if height * width <= FULL_IMAGE_PIXELS:
        return [(slice(0, height), slice(0, width))]
    size_h, size_w = min(CROP, height), min(CROP, width)
    tops = np.linspace(0, height - size_h, CROP_GRID).round().astype(int)
    lefts = np.linspace(0, width - size_w, CROP_GRID).round().astype(int)
    return [(slice(t, t + size_h), slice(s, s + size_w)) for t in tops for s in lefts]


def fit_image_dial(
    reference: np.ndarray, base: Tensor, real: Tensor, probe: Sequence[float] = PROBE_WEIGHTS, metric: str = PERCEPTUAL
) -> tuple[float, ...] | None:
    """The interior weights of an even dial for this image, none of them below the blend's PSNR floor,
    quantised as stored; None where the realistic end is no closer perceptually than the base (a flat
    image), so the file keeps the module's dial."""
    distances = np.zeros(len(probe))
    for rows, cols in probe_regions(*reference.shape[:2]):
        scores = blend_scores(reference[rows, cols], base[..., rows, cols], real[..., rows, cols], probe, metric)
        distances += scores[:, 0]
    try:
        weights = even_weights(probe, distances, IMAGE_DIAL_KNOTS, "this image")
    except DPFusionError:
        return None
    floor = blend_optimum(reference, base, real).psnr_floor()
    return decode_dial(encode_dial(floored(weights, floor)[1:-1]))


def image_calibration(weights: Sequence[float], quality: float) -> DialCalibration:
    """The dial a file's own weights describe, in the module calibration's form."""
    return DialCalibration(IMAGE_DIAL_KNOTS, {float(quality): (1.0, *weights, 0.0)})
