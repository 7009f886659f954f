"""The sweep's view of :mod:`dpfusion.metrics`: which requested metrics run, and scoring decoded images.

Three levels of metric, handled separately:

``image``  full-reference, one value per (reference, decoded) pair: psnr, ms_ssim, lpips_*, dists ...
``noref``  no-reference, one value per decoded image: niqe.
``set``    one value per group of images (all images' 256x256 patches of one rate and tau): fid, kid.

A requested metric whose weights are missing is *unavailable*: it is kept in the results with
the reason, never silently dropped. A name no metric has is an error (a typo should not run
a sweep for hours without the metric it was meant to measure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from dpfusion import metrics as metrics_package
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor
from dpfusion.metrics.registry import metric_names

DEFAULT_METRICS = ("psnr", "ms_ssim", "lpips_alex", "dists")


def level(metric: str) -> str:
    return metrics_package.metric_spec(metric).level


def _registry() -> tuple[dict[str, Callable[..., Any]], dict[str, str | None]]:
    return metrics_package.METRICS, metrics_package.available_metrics()


def _batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.cat([to_tensor(image) for image in images])


class Scorer:
    """Scores decoded images with the requested metrics that can run here."""

    def __init__(self, requested: Sequence[str]):
        registry, availability = _registry()
        unknown = [m for m in requested if m not in registry]
        if unknown:
            raise DPFusionError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(metric_names())}")
        if len(set(requested)) != len(requested):
            raise DPFusionError(f"metrics repeated in {', '.join(requested)}")
        self.requested = list(requested)
        self.functions = {m: registry[m] for m in requested}
        self.unavailable = {m: availability.get(m) for m in requested if availability.get(m) is not None}
        available = [m for m in requested if m not in self.unavailable]
        self.image_metrics = [m for m in available if level(m) != "set"]
        self.set_metrics = [m for m in available if level(m) == "set"]

    def info(self) -> dict[str, dict[str, Any]]:
        """Per requested metric: available (with the reason if not), level and which direction is better."""
        out = {}
        for metric in self.requested:
            entry: dict[str, Any] = {
                "available": metric not in self.unavailable,
                "level": "set" if level(metric) == "set" else "image",
                "better": metrics_package.metric_spec(metric).better,
            }
            if metric in self.unavailable:
                entry["reason"] = self.unavailable[metric]
            out[metric] = entry
        return out

    @torch.no_grad()
    def score(
        self, reference: np.ndarray, decoded: Sequence[np.ndarray]
    ) -> tuple[list[dict[str, float | None]], dict[str, str]]:
        """Per decoded image, every per-image metric; a metric that refuses the image gives None and a reason."""
        x = _batch(decoded)
        y = to_tensor(reference).expand_as(x)
        values: list[dict[str, float | None]] = [{} for _ in decoded]
        errors: dict[str, str] = {}
        for metric in self.image_metrics:
            function = self.functions[metric]
            try:
                scores = function(x) if level(metric) == "noref" else function(x, y)
                column = [float(v) for v in torch.as_tensor(scores).reshape(-1).tolist()]
            except DPFusionError as exc:
                errors[metric] = str(exc)
                column = [None] * len(decoded)
            for row, value in zip(values, column, strict=True):
                row[metric] = None if value is None or not np.isfinite(value) else value
            if any(not np.isfinite(v) for v in column if v is not None):
                errors.setdefault(metric, "not finite (identical images give infinite PSNR)")
        return values, errors
