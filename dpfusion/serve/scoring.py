"""The page's live numbers: PSNR, MS-SSIM and LPIPS of the shown image, each with a reason when missing."""

from __future__ import annotations

import math

import numpy as np

from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor
from dpfusion.metrics import METRICS, available_metrics

PAGE_METRICS = ("psnr", "ms_ssim", "lpips_alex")


def score(shown: np.ndarray, reference: np.ndarray) -> dict[str, dict[str, float | str]]:
    """``{name: {"value": v}}``, ``{name: {"unavailable": reason}}`` or ``{name: {"identical": true}}``.

    LPIPS is scored only when ``dpfusion weights prepare`` has run; identical images
    have infinite PSNR, which JSON cannot carry, hence the third form.
    """
    availability = available_metrics()
    x_hat, x = to_tensor(shown), to_tensor(reference)
    scores: dict[str, dict[str, float | str]] = {}
    for name in PAGE_METRICS:
        missing = availability.get(name)
        if missing is not None:
            scores[name] = {"unavailable": " ".join(missing.split())}
            continue
        try:
            value = float(METRICS[name](x_hat, x)[0])
        except DPFusionError as exc:
            scores[name] = {"unavailable": " ".join(str(exc).split())}
            continue
        scores[name] = {"value": value} if math.isfinite(value) else {"identical": True}
    return scores
