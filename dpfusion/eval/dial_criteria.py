"""Is the dial a dial? Evenness, the blend comparison and wasted positions, per rate, from eval results.

Inputs are the documents ``dpfusion eval`` writes: one for the dial (several tau of one module),
one for the plain pixel blend of its two ends (``--tau-mode linear``, many tau) and optionally one
with FID/KID. Every figure is a mean over the evaluated photos, as in the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpfusion.eval.records import Results

PSNR_MARGIN = 0.01
"""dB: a position beaten in PSNR by less than this is not beaten (noise of a mean over photos)."""
LPIPS_MARGIN = 0.0005


@dataclass(frozen=True)
class Point:
    tau: float
    psnr: float
    lpips: float


@dataclass(frozen=True)
class RateVerdict:
    """The dial's figures at one rate; shares are fractions of the LPIPS range ``L(1) - L(0)``."""

    rate: float
    evenness: float  # max |u(tau) - (1 - tau)| over the interior taus
    blend_gap: float  # mean over the interior of (LPIPS - best blend LPIPS at no lower PSNR) / range
    wasted: tuple[tuple[float, float], ...]  # (tau, the tau that beats it in both PSNR and LPIPS)
    beyond_blend: int = 0  # interior positions above every PSNR the sampled blend reaches (counted as gap 0)


def curve_points(doc: Results, rate: float, metric: str = "lpips_alex") -> list[Point]:
    """(tau, PSNR, LPIPS) of every model curve of a results document at one rate, sorted by tau."""
    points = []
    for curve in doc.learned():
        if rate in curve.rates:
            i = curve.rates.index(rate)
            points.append(Point(curve.tau, curve.results["psnr"][i], curve.results[metric][i]))
    return sorted(points, key=lambda p: p.tau)


def _interior(points: list[Point]) -> list[Point]:
    return [p for p in points if 0.0 < p.tau < 1.0]


def evenness(points: list[Point]) -> float:
    ends = {p.tau: p for p in points}
    span = ends[1.0].lpips - ends[0.0].lpips
    return max(abs((ends[1.0].lpips - p.lpips) / span - (1.0 - p.tau)) for p in _interior(points))


def best_blend_lpips(blend: list[Point], psnr: float) -> float:
    """The lowest LPIPS the blend reaches at a PSNR no lower than ``psnr`` (on its piecewise-linear path)."""
    path = sorted(blend, key=lambda p: p.tau)
    best = np.inf
    for a, b in zip(path, path[1:], strict=False):
        for share in np.linspace(0.0, 1.0, 201):
            p = a.psnr + share * (b.psnr - a.psnr)
            if p >= psnr:
                best = min(best, a.lpips + share * (b.lpips - a.lpips))
    return float(best)


def blend_gap(points: list[Point], blend: list[Point]) -> tuple[float, int]:
    """Mean LPIPS excess over the blend at no lower PSNR, as a share of the LPIPS range, and how many
    positions no blend sample matches in PSNR: the blend does not dominate those, so they count as 0."""
    ends = {p.tau: p for p in points}
    span = ends[1.0].lpips - ends[0.0].lpips
    gaps = [p.lpips - best_blend_lpips(blend, p.psnr) for p in _interior(points)]
    beyond = sum(1 for g in gaps if not np.isfinite(g))
    return float(np.mean([g if np.isfinite(g) else 0.0 for g in gaps]) / span), beyond


def wasted(points: list[Point]) -> tuple[tuple[float, float], ...]:
    """Interior and tau = 0 positions that another tau beats in PSNR and LPIPS by more than the margins."""
    out = []
    for a in points:
        if a.tau == 1.0:
            continue
        for b in points:
            if b.psnr > a.psnr + PSNR_MARGIN and b.lpips < a.lpips - LPIPS_MARGIN:
                out.append((a.tau, b.tau))
                break
    return tuple(out)


def verdict(dial: dict, blend: dict, rate: float) -> RateVerdict:
    points = curve_points(dial, rate)
    gap, beyond = blend_gap(points, curve_points(blend, rate))
    return RateVerdict(rate, evenness(points), gap, wasted(points), beyond)
