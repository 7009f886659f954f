"""Sweep records -> a :class:`~dpfusion.eval.records.Results`: per-image rows, then curves of means.

Each curve point is one rate (learned codec) or quality (baseline); its values are means over
images and seeds, and with several seeds the spread of the per-seed means is kept as ``seed_std``.
Set-level metrics (FID, KID) come per group from ``setlevel`` and are averaged over seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpfusion.eval.records import MODEL_KIND, Curve, ImageRow, Results, UnitRecord, Values, tau_key

COMPRESSAI_ALIASES = {"psnr": "psnr-rgb", "ms_ssim": "ms-ssim-rgb"}
"""Our metric names -> CompressAI's, written beside ours so its plot tool reads our curves."""
DESCRIPTION = "dpfusion evaluation sweep: rate x tau (x steps x seeds), baselines on the same images"

SetValues = dict[tuple, Values]
"""Set-level metric values by group: ``("dpfusion", rate, steps, seed, tau)`` or ``(kind, quality)``."""


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(values) / len(values))


def _std(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    mean = sum(values) / len(values)
    return float(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)))


def curve_id(kind: str, tau: float | None = None, steps: int | None = None, several_steps: bool = False) -> str:
    if tau is None:
        return kind
    return f"tau{tau_key(tau)}" + (f"_steps{steps}" if several_steps else "")


def image_rows(records: Iterable[UnitRecord], metrics: Sequence[str]) -> list[ImageRow]:
    """One row per decoded image; a unit's decode time is shared by the taus it decoded together."""
    rows = []
    for record in records:
        for tau, values in record.values.items():
            rows.append(
                ImageRow(
                    codec=record.kind,
                    image=record.image,
                    rate=record.rate,
                    quality=record.quality,
                    tau=float(tau) if record.kind == MODEL_KIND else None,
                    steps=record.steps,
                    seed=record.seed,
                    bytes=record.bytes,
                    pixels=record.pixels,
                    bpp=record.bpp,
                    encode_time=record.encode_time,
                    decode_time=record.decode_time / len(record.values),
                    values={m: values.get(m) for m in metrics},
                )
            )
    return rows


@dataclass
class _Point:
    values: dict[str, float | None] = field(default_factory=dict)
    seed_std: dict[str, float | None] = field(default_factory=dict)


def _point(
    rows: list[ImageRow], image_metrics: Sequence[str], sets: list[Values], set_metrics: Sequence[str]
) -> _Point:
    """One curve point from its rows (all images, all seeds) and its set-level values (one per seed)."""
    by_image: dict[str, list[float]] = defaultdict(list)
    by_seed: dict[Any, list[ImageRow]] = defaultdict(list)
    for row in rows:
        by_image[row.image].append(row.bpp)
        by_seed[row.seed].append(row)
    point = _Point({"bpp": _mean([sum(v) / len(v) for v in by_image.values()])})
    for metric in image_metrics:
        point.values[metric] = _mean([r.values[metric] for r in rows])
        point.seed_std[metric] = _std([_mean([r.values[metric] for r in group]) for group in by_seed.values()])
    for metric in set_metrics:
        per_seed = [values.get(metric) for values in sets]
        point.values[metric] = _mean(per_seed)
        point.seed_std[metric] = _std(per_seed)
    point.values["encoding_time"] = _mean([r.encode_time for r in rows])
    point.values["decoding_time"] = _mean([r.decode_time for r in rows])
    return point


def _groups(rows: list[ImageRow]) -> dict[tuple, list[ImageRow]]:
    """Rows by curve: ``(kind, tau, steps)`` for the learned codec, ``(kind, None, None)`` for a baseline."""
    groups: dict[tuple, list[ImageRow]] = defaultdict(list)
    for row in rows:
        learned = row.codec == MODEL_KIND
        groups[(row.codec, row.tau if learned else None, row.steps if learned else None)].append(row)
    return groups


@dataclass(frozen=True)
class _Context:
    """What every curve of one sweep is built with."""

    image_metrics: list[str]
    set_metrics: list[str]
    set_values: SetValues
    several_steps: bool
    several_seeds: bool
    model_name: str
    baseline_labels: dict[str, str]


def _curve(key: tuple, rows: list[ImageRow], ctx: _Context) -> Curve:
    kind, tau, steps = key
    learned = kind == MODEL_KIND
    by_x: dict[Any, list[ImageRow]] = defaultdict(list)
    for row in rows:
        by_x[row.rate if learned else row.quality].append(row)
    xs = sorted(by_x)
    points = []
    for x in xs:
        if learned:
            seeds = sorted({r.seed for r in by_x[x]})
            sets = [ctx.set_values.get((kind, x, steps, s, tau), {}) for s in seeds]
        else:
            sets = [ctx.set_values.get((kind, x), {})]
        points.append(_point(by_x[x], ctx.image_metrics, sets, ctx.set_metrics))
    keys = ["bpp", *ctx.image_metrics, *ctx.set_metrics, "encoding_time", "decoding_time"]
    results = {k: [p.values[k] for p in points] for k in keys}
    results.update({theirs: results[ours] for ours, theirs in COMPRESSAI_ALIASES.items() if ours in results})
    if learned:
        name = f"{ctx.model_name} tau={tau:g}" + (f" ({steps} steps)" if ctx.several_steps else "")
    else:
        name = ctx.baseline_labels.get(kind, kind)
    curve = Curve(curve_id(kind, tau, steps, ctx.several_steps), name, kind, results, tau, steps)
    if learned:
        curve.rates = xs
    else:
        curve.qualities = xs
    if learned and ctx.several_seeds:
        curve.seed_std = {m: [p.seed_std[m] for p in points] for m in [*ctx.image_metrics, *ctx.set_metrics]}
    return curve


def _errors(records: Sequence[UnitRecord], set_errors: dict[str, list[str]] | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for metric, message in record.errors.items():
            errors[metric].append(f"{record.image}: {message}")
    for metric, messages in (set_errors or {}).items():
        errors[metric].extend(messages)
    return dict(errors)


def _curve_order(curve: Curve) -> tuple:
    return (not curve.learned, curve.kind, -1 if curve.tau is None else curve.tau, curve.steps or 0)


def build_results(
    records: Sequence[UnitRecord],
    settings: dict[str, Any],
    metrics_info: dict[str, dict[str, Any]],
    set_values: SetValues | None = None,
    model_name: str = MODEL_KIND,
    baseline_labels: dict[str, str] | None = None,
    set_errors: dict[str, list[str]] | None = None,
) -> Results:
    """The results of a sweep from its journal records (see the module docstring)."""
    available = [m for m, info in metrics_info.items() if info["available"]]
    ctx = _Context(
        image_metrics=[m for m in available if metrics_info[m]["level"] == "image"],
        set_metrics=[m for m in available if metrics_info[m]["level"] == "set"],
        set_values=set_values or {},
        several_steps=len(settings.get("steps", [])) > 1,
        several_seeds=len(settings.get("seeds", [])) > 1,
        model_name=model_name,
        baseline_labels=baseline_labels or {},
    )
    rows = image_rows(records, ctx.image_metrics)
    curves = sorted((_curve(key, group, ctx) for key, group in _groups(rows).items()), key=_curve_order)
    return Results(
        name=model_name,
        curves=curves,
        settings=settings,
        metrics=metrics_info,
        per_image=rows,
        errors=_errors(records, set_errors),
        description=DESCRIPTION,
    )
