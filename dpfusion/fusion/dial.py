"""The user's tau -> what the decoder renders: the two end images blended, with calibrated steps.

Between the base decode ``x(1)`` and the realistic decode ``x(0)`` the decoder shows the pixel
blend ``x(1) + w(tau) * (x(0) - x(1))``. For MSE distortion and a Wasserstein-2 realism the
optimal distortion-perception points are exactly such blends of the two extremes (Freirich,
Michaeli and Meir, NeurIPS 2021), and measured on this project's module the blend beat the
paper's eq.-4 interior at every rate (docs/METHOD.md). ``w`` is not ``1 - tau``: LPIPS falls
fast for the first few percent of ``x(0)``, so a linear weight is a switch. A calibration,
measured on validation photos per rate, maps tau to the weight that travels the share
``1 - tau`` of the LPIPS range; it is stored in the fusion module's JSON.

Modes: ``dial`` (the calibrated blend, default), ``linear`` (``w = 1 - tau``: the baseline any
user could build from the two ends) and ``paper`` (the raw tau of eq. 4, kept for the
reproduction).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError

TAU_MODES = ("dial", "linear", "paper")
DEFAULT_TAU_MODE = "dial"
LEGACY_DIAL_VERSION = 1
"""Schema 1 stored the calibration with a ``version`` of its own."""


@dataclass(frozen=True)
class DialCalibration(Configurable):
    """Per rate (the ``quality`` a file carries): the blend weight at each tau knot.

    An empty calibration is the linear blend. Between two calibrated rates the weights are
    interpolated linearly; outside them the nearest rate's curve is used.
    """

    config_kind = "dpfusion.dial"

    knots: tuple[float, ...] = (0.0, 1.0)
    weights: dict[float, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        knots = np.asarray(self.knots)
        if knots[0] != 0.0 or knots[-1] != 1.0 or np.any(np.diff(knots) <= 0):
            raise DPFusionError(f"dial knots must rise from 0 to 1, got {list(self.knots)}")
        for rate, curve in self.weights.items():
            values = np.asarray(curve)
            if len(values) != len(knots) or values[0] != 1.0 or values[-1] != 0.0 or np.any(np.diff(values) > 0):
                raise DPFusionError(f"dial weights at rate {rate:g} must fall from 1 to 0 over the knots")

    def curve(self, quality: float) -> np.ndarray:
        """The weights at the knots for a file's rate."""
        if not self.weights:
            return 1.0 - np.asarray(self.knots)
        rates = sorted(self.weights)
        q = float(np.clip(quality, rates[0], rates[-1]))
        upper = next(i for i, r in enumerate(rates) if r >= q)
        if rates[upper] == q or upper == 0:
            return np.asarray(self.weights[rates[upper]])
        low, high = rates[upper - 1], rates[upper]
        share = (q - low) / (high - low)
        return (1 - share) * np.asarray(self.weights[low]) + share * np.asarray(self.weights[high])

    def weight(self, tau: float | np.ndarray, quality: float) -> float | np.ndarray:
        """``w(tau)`` for a scalar or a map: 0 at tau = 1 exactly, 1 at tau = 0."""
        out = np.interp(tau, self.knots, self.curve(quality))
        return float(out) if np.ndim(out) == 0 else out.astype(np.float32)

    @property
    def config(self) -> dict[str, Any]:
        """JSON keys are strings: each rate is written as ``f"{rate:g}"``."""
        return {"knots": list(self.knots), "weights": {f"{r:g}": list(c) for r, c in sorted(self.weights.items())}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DialCalibration:
        weights = {float(r): tuple(float(v) for v in c) for r, c in config["weights"].items()}
        return cls(tuple(float(k) for k in config["knots"]), weights)

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("version") != LEGACY_DIAL_VERSION:
            raise DPFusionError(f"dial calibration version {data.get('version')!r} is not {LEGACY_DIAL_VERSION}")
        return {key: value for key, value in data.items() if key != "version"}


LINEAR = DialCalibration()


def weights_for(mode: str, calibration: DialCalibration, tau: float | np.ndarray, quality: float):
    """The blend weight of ``x(0)`` for a tau under a mode (``paper`` has none: it fuses latents)."""
    if mode == "dial":
        return calibration.weight(tau, quality)
    if mode == "linear":
        return LINEAR.weight(tau, quality)
    raise DPFusionError(f"tau mode {mode!r} does not blend; choose from {', '.join(TAU_MODES)}")


def any_interior(taus: Iterable[float]) -> bool:
    """Whether some tau lies strictly inside (0, 1): only there does the dial, module's or file's, shape a decode."""
    return any(0.0 < t < 1.0 for t in taus)


def is_whole(weight: float | np.ndarray) -> bool:
    """Whether a blend weight is 1 everywhere: the realistic end alone, which needs no base image."""
    return bool(np.all(np.asarray(weight) == 1.0))


def blend(base: Tensor | None, real: Tensor, weight: float | np.ndarray) -> Tensor:
    """``base + w (real - base)`` on (1, 3, H, W) images; ``w`` a number or an (H, W) map. ``w = 0`` is ``base``
    and ``w = 1`` is ``real`` itself (not ``base + (real - base)``, which rounds), so ``base`` may be None then."""
    if is_whole(weight):
        return real
    if base is None:
        raise ValueError("a blend weight below 1 needs the base image")
    if np.ndim(weight) == 0:
        return base if float(weight) == 0.0 else base + float(weight) * (real - base)
    if not np.any(weight):
        return base
    w = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))[None, None].to(base)
    return base + w * (real - base)
