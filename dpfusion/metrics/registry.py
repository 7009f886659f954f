"""Metrics by name, each with what every report needs to know about it: direction, label, order, level.

``register_metric`` is the one place a metric is described; the sweep, the plots and ``bdrate``
read its direction and label from here. Levels: ``image`` (full reference, ``f(x, y)`` -> (B,)),
``noref`` (``f(x)`` -> (B,)) and ``set`` (``f(real_images, fake_images)`` -> one float).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dpfusion.errors import DPFusionError

LEVELS = ("image", "noref", "set")
DOWN, UP = "\u2193", "\u2191"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    function: Callable[..., Any]
    label: str
    lower_is_better: bool
    level: str = "image"
    order: int = 100
    perceptual: bool = False  # a realism/perception measure (plotted against PSNR in trade-off figures)

    @property
    def better(self) -> str:
        return "lower" if self.lower_is_better else "higher"

    @property
    def axis_label(self) -> str:
        """The label with an arrow pointing the better way, for plot axes."""
        return f"{self.label} {DOWN if self.lower_is_better else UP}"


METRIC_SPECS: dict[str, MetricSpec] = {}
METRICS: dict[str, Callable[..., Any]] = {}
"""Name -> function, for callers that only score (kept in step with ``METRIC_SPECS``)."""


def register_metric(
    name: str,
    *,
    label: str,
    lower_is_better: bool,
    level: str = "image",
    order: int = 100,
    perceptual: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``function`` as metric ``name``; ``order`` sorts it in tables and figures."""

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        if level not in LEVELS:
            raise DPFusionError(f"metric {name!r}: level must be one of {', '.join(LEVELS)}, not {level!r}")
        if name in METRIC_SPECS:
            raise DPFusionError(f"metric {name!r} is already registered")
        METRIC_SPECS[name] = MetricSpec(name, function, label, lower_is_better, level, order, perceptual)
        METRICS[name] = function
        return function

    return decorator


def unregister_metric(name: str) -> None:
    METRIC_SPECS.pop(name, None)
    METRICS.pop(name, None)


def metric_spec(name: str) -> MetricSpec:
    spec = METRIC_SPECS.get(name)
    if spec is None:
        raise DPFusionError(f"unknown metric {name!r}; choose from {', '.join(metric_names())}")
    return spec


def metric_names() -> tuple[str, ...]:
    """Registered metrics in report order."""
    return tuple(sorted(METRIC_SPECS, key=lambda m: (METRIC_SPECS[m].order, m)))


def better(name: str) -> str:
    """``lower`` or ``higher``; a name no metric has (a foreign curve's column) counts as higher-is-better."""
    spec = METRIC_SPECS.get(name)
    return spec.better if spec else "higher"


def axis_label(name: str) -> str:
    spec = METRIC_SPECS.get(name)
    return spec.axis_label if spec else f"{name} {UP}"


def sort_key(name: str) -> tuple[int, str]:
    """Registered metrics in their order, unknown names after them, alphabetically."""
    spec = METRIC_SPECS.get(name)
    return (spec.order if spec else 1000, name)
