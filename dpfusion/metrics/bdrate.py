"""Bjontegaard deltas between two rate-quality curves, via the maintained ``bjontegaard`` package.

The default interpolation is PCHIP in log-rate, as in the JCT-VC/JVET common-test-condition
spreadsheets (which the package reproduces to ten decimals); 'akima' and 'cubic' (VCEG-M33's
original third-order fit) are also available. Quality may be any metric where higher is better
(PSNR, MS-SSIM); for distances such as LPIPS pass their negation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from dpfusion.errors import DPFusionError

METHODS = ("pchip", "akima", "cubic")
Curve = tuple[Sequence[float], Sequence[float]]


def _delta(kind: str, anchor: Curve, test: Curve, method: str) -> float:
    if method not in METHODS:
        raise DPFusionError(f"{kind}: unknown interpolation {method!r}; choose from {', '.join(METHODS)}")
    arrays = [np.asarray(values, dtype=np.float64).ravel() for values in (*anchor, *test)]
    for rates, qualities in (arrays[:2], arrays[2:]):
        if len(rates) != len(qualities) or len(rates) < 2:
            raise DPFusionError(
                f"{kind}: each curve needs at least two (rate, quality) points, as many rates as qualities"
            )
        if (rates <= 0).any():
            raise DPFusionError(f"{kind}: rates must be positive")
    import bjontegaard  # imports matplotlib: only when a delta is asked for

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Curves do not overlap")  # raised as an error below
            value = float(getattr(bjontegaard, kind)(*arrays, method=method, require_matching_points=False))
    except ValueError as exc:
        raise DPFusionError(f"{kind}: {exc}") from None
    if math.isnan(value):
        axis = "quality" if kind == "bd_rate" else "rate"  # BD-rate integrates over quality, BD-quality over rate
        raise DPFusionError(f"{kind}: the two curves' {axis} ranges do not overlap")
    return value


def bd_rate(anchor: Curve, test: Curve, method: str = "pchip") -> float:
    """Average rate change of ``test`` against ``anchor`` at equal quality, in percent (negative: test saves bits).

    Each curve is ``(rates, qualities)``.
    """
    return _delta("bd_rate", anchor, test, method)


def bd_quality(anchor: Curve, test: Curve, method: str = "pchip") -> float:
    """Average quality change of ``test`` against ``anchor`` at equal rate (BD-PSNR when quality is PSNR)."""
    return _delta("bd_psnr", anchor, test, method)
