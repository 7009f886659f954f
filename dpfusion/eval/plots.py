"""Figures from a results document (matplotlib's Figure API, no pyplot state, PNGs written atomically).

``rate_<metric>.png``      metric against bpp for every tau, the range between tau = 0 and
                           tau = 1 shaded (paper Fig. 5), baselines dashed.
``tradeoff_<metric>.png``  PSNR against a perceptual metric, one line per rate through the
                           tau values (paper Fig. 8).
``tau_<metric>.png``       metric against tau, one line per rate (paper Fig. 10).
``steps.png``              PSNR and perceptual metrics against the number of sampling steps,
                           when the sweep holds several (paper Fig. 9).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.eval.records import Curve, Results
from dpfusion.metrics.registry import METRIC_SPECS, sort_key
from dpfusion.metrics.registry import axis_label as label

NON_METRICS = frozenset({"bpp", "encoding_time", "decoding_time", "psnr-rgb", "ms-ssim-rgb"})


def is_perceptual(metric: str) -> bool:
    spec = METRIC_SPECS.get(metric)
    return spec is not None and spec.perceptual


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """A figure built with ``Figure()`` (no pyplot, so no global backend or figure list), written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def _decorate(ax: Any, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """The labels, grid and legend every figure here shares."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _finite(values: Sequence[Any]) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


def metrics_in(doc: Results) -> list[str]:
    """Metrics with at least one value on some curve, in a stable order."""
    found: list[str] = []
    for curve in doc.curves:
        for key, values in curve.results.items():
            if key not in NON_METRICS and key not in found and isinstance(values, list) and _finite(values):
                found.append(key)
    return sorted(found, key=sort_key)


def default_steps(doc: Results) -> int | None:
    """The step count the rate plots use: 10 (the paper's default) when swept, else the first one."""
    steps = sorted({c.steps for c in doc.learned()})
    if not steps:
        return None
    return 10 if 10 in steps else steps[0]


def _xy(curve: Curve, metric: str) -> tuple[list[float], list[float]]:
    pairs = [
        (x, y)
        for x, y in zip(curve.results["bpp"], curve.results.get(metric, []), strict=False)
        if x is not None and y is not None
    ]
    pairs.sort()
    return [p[0] for p in pairs], [p[1] for p in pairs]


def rate_figure(doc: Results, metric: str, steps: int | None = None) -> Figure:
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    learned = doc.learned(steps)
    cmap = colormaps["viridis"]
    taus = [c.tau for c in learned]
    for curve in learned:
        xs, ys = _xy(curve, metric)
        if xs:
            shade = cmap(0.15 + 0.7 * curve.tau) if len(taus) > 1 else "C0"
            ax.plot(xs, ys, marker="o", markersize=3, color=shade, label=curve.name)
    if taus and min(taus) == 0.0 and max(taus) == 1.0:  # paper Fig. 5: the range one model spans
        low, high = _xy(learned[0], metric), _xy(learned[-1], metric)
        if low[0] and low[0] == high[0]:  # every tau of a rate shares one bitstream: same bpp
            ax.fill_between(low[0], low[1], high[1], color="C0", alpha=0.15, label="tau range [0, 1]")
    for index, curve in enumerate(doc.baselines()):
        xs, ys = _xy(curve, metric)
        if xs:
            ax.plot(xs, ys, linestyle="--", marker=".", color=f"C{index + 1}", label=curve.name)
    _decorate(ax, "bits per pixel", label(metric), f"rate vs {label(metric)}")
    return fig


def _by_rate(curves: list[Curve]) -> dict[float, list[tuple[float, Curve, int]]]:
    """rate -> [(tau, curve, index of the rate in the curve)]."""
    out: dict[float, list[tuple[float, Curve, int]]] = defaultdict(list)
    for curve in curves:
        for index, rate in enumerate(curve.rates or []):
            out[rate].append((curve.tau, curve, index))
    return {rate: sorted(items, key=lambda item: item[0]) for rate, items in sorted(out.items())}


def tradeoff_figure(doc: Results, perceptual: str, fidelity: str = "psnr", steps: int | None = None) -> Figure:
    """Paper Fig. 8: fidelity against perception, one line per rate through its tau values."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    for index, items in enumerate(_by_rate(doc.learned(steps)).values()):
        points = [
            (c.results[perceptual][i], c.results[fidelity][i], tau)
            for tau, c, i in items
            if c.results.get(perceptual) and c.results.get(fidelity)
        ]
        points = [p for p in points if p[0] is not None and p[1] is not None]
        if not points:
            continue
        bpp = items[0][1].results["bpp"][items[0][2]]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=f"C{index}", label=f"{bpp:.3f} bpp")
        for x, y, tau in points:
            ax.annotate(f"{tau:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
    _decorate(ax, label(perceptual), label(fidelity), "distortion vs perception (labels: tau)")
    return fig


def tau_figure(doc: Results, metric: str, steps: int | None = None) -> Figure:
    """Paper Fig. 10: a metric against tau, one line per rate; monotonic if the dial works."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    for index, items in enumerate(_by_rate(doc.learned(steps)).values()):
        points = [(tau, c.values(metric)[i]) for tau, c, i in items]
        points = [p for p in points if p[1] is not None]
        if points:
            bpp = items[0][1].results["bpp"][items[0][2]]
            ax.plot(*zip(*points, strict=True), marker="o", color=f"C{index}", label=f"{bpp:.3f} bpp")
    _decorate(ax, "tau (0 = realism, 1 = base codec)", label(metric), f"{label(metric)} against tau")
    return fig


def steps_figure(doc: Results, metrics: Sequence[str]) -> Figure:
    """Paper Fig. 9: quality against the number of sampling steps at the lowest tau, one line per rate."""
    curves = doc.learned()
    tau = min(c.tau for c in curves)
    curves = sorted((c for c in curves if c.tau == tau), key=lambda c: c.steps)
    fig = Figure(figsize=(4.5 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    rates = sorted({r for c in curves for r in c.rates or []})
    for ax, metric in zip(axes[0], metrics, strict=True):
        for index, rate in enumerate(rates):
            points = [(c.steps, c.values(metric)[c.rates.index(rate)]) for c in curves if rate in c.rates]
            points = [p for p in points if p[1] is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", color=f"C{index}", label=f"rate {rate:g}")
        ax.set_xticks(sorted({c.steps for c in curves}))
        _decorate(ax, "sampling steps", label(metric))
    fig.suptitle(f"quality against sampling steps (tau = {tau:g})")
    return fig


def plot_all(doc: Results, folder: str | Path) -> list[Path]:
    """Every figure the document supports; returns the PNG paths."""
    folder = Path(folder)
    metrics = metrics_in(doc)
    if not metrics:
        raise DPFusionError("the results hold no metric values to plot")
    steps = default_steps(doc)
    written = [save_figure(rate_figure(doc, m, steps), folder / f"rate_{m}.png") for m in metrics]
    learned = doc.learned(steps)
    if learned and len(learned) > 1:
        perceptual = [m for m in metrics if is_perceptual(m)]
        if "psnr" in metrics:
            for m in perceptual:
                written.append(save_figure(tradeoff_figure(doc, m, steps=steps), folder / f"tradeoff_{m}.png"))
        for m in metrics:
            written.append(save_figure(tau_figure(doc, m, steps), folder / f"tau_{m}.png"))
    if len({c.steps for c in doc.learned()}) > 1:
        shown = [m for m in metrics if m == "psnr" or is_perceptual(m)][:3]
        written.append(save_figure(steps_figure(doc, shown), folder / "steps.png"))
    return written
