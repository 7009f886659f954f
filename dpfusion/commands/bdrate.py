"""``dpfusion bdrate ANCHOR TEST --metric M``: Bjontegaard deltas of TEST against ANCHOR.

Each curve is a CompressAI-style JSON file (``results/tau0.json``, CompressAI's own eval
output) or one curve of a ``dpfusion eval`` results file, picked as ``results.json#tau0``.
For metrics where lower is better (LPIPS, DISTS, FID ...) the deltas are computed on the
negated metric, so a negative BD-rate always means TEST needs fewer bits for the same quality;
the BD-metric is reported in the metric's own units (for LPIPS, negative means TEST is better).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dpfusion.errors import DPFusionError
from dpfusion.eval.records import Curve
from dpfusion.eval.results_io import load_results
from dpfusion.metrics.bdrate import METHODS, bd_quality, bd_rate
from dpfusion.metrics.registry import better


def load_curve(spec: str) -> Curve:
    """``PATH`` or ``PATH#CURVE_ID`` -> one curve."""
    path, _, wanted = spec.partition("#")
    results = load_results(path)
    if wanted:
        return results.curve(wanted, path)
    if len(results.curves) != 1:
        ids = ", ".join(c.id for c in results.curves)
        raise DPFusionError(f"{path} holds {len(results.curves)} curves ({ids}): pick one as {path}#ID")
    return results.curves[0]


def curve_points(curve: Curve, metric: str) -> tuple[list[float], list[float]]:
    if metric not in curve.results:
        raise DPFusionError(f"curve {curve.name!r} has no {metric} values (it has: {', '.join(curve.metrics())})")
    rates, values = curve.results["bpp"], curve.results[metric]
    if any(v is None for v in values) or any(r is None for r in rates):
        raise DPFusionError(f"curve {curve.name!r} has missing {metric} values (see the results' errors)")
    pairs = sorted(zip((float(r) for r in rates), (float(v) for v in values), strict=True))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _check_monotonic(curve: Curve, rates: list[float], qualities: list[float], metric: str) -> None:
    """Bjontegaard interpolation needs quality that strictly improves with the rate."""
    for i in range(len(rates) - 1):
        (r0, q0), (r1, q1) = (rates[i], qualities[i]), (rates[i + 1], qualities[i + 1])
        if not q1 > q0:
            raise DPFusionError(
                f"curve {curve.name!r}: {metric} does not improve from {r0:.4g} to {r1:.4g} bpp; "
                "BD-rate needs curves whose quality improves with the rate at every point"
            )


def deltas(anchor: Curve, test: Curve, metric: str, method: str = "pchip") -> dict[str, Any]:
    """BD-rate in percent and BD-metric in the metric's units, of ``test`` against ``anchor``."""
    lower = better(metric) == "lower"
    sign = -1.0 if lower else 1.0  # the Bjontegaard code assumes quality rises with the rate
    (ra, qa), (rt, qt) = curve_points(anchor, metric), curve_points(test, metric)
    qa, qt = [sign * q for q in qa], [sign * q for q in qt]
    _check_monotonic(anchor, ra, qa, metric)
    _check_monotonic(test, rt, qt, metric)
    rate = bd_rate((ra, qa), (rt, qt), method)
    quality = sign * bd_quality((ra, qa), (rt, qt), method)
    return {
        "anchor": anchor.name,
        "test": test.name,
        "metric": metric,
        "better": better(metric),
        "method": method,
        "bd_rate": rate,
        "bd_metric": quality,
        "test_better_by_rate": rate < 0,
        "test_better_by_metric": quality < 0 if lower else quality > 0,
    }


def run(args: argparse.Namespace) -> None:
    anchor, test = load_curve(args.anchor), load_curve(args.test)
    result = deltas(anchor, test, args.metric, args.method)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    metric, rate, quality = result["metric"], result["bd_rate"], result["bd_metric"]
    print(f"anchor: {result['anchor']}\ntest:   {result['test']}")
    print(f"metric: {metric} ({result['better']} is better), interpolation {result['method']}")
    fewer = "fewer" if rate < 0 else "more"
    verdict = "test better" if result["test_better_by_rate"] else "anchor better"
    print(f"BD-rate:     {rate:+.2f} % (test needs {abs(rate):.2f}% {fewer} bits for the same {metric}; {verdict})")
    verdict = "test better" if result["test_better_by_metric"] else "anchor better"
    direction = "higher" if quality > 0 else "lower"
    print(
        f"BD-{metric}: {quality:+.4g} (test's {metric} is {abs(quality):.4g} {direction} at the same rate; "
        f"{result['better']} is better: {verdict})"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bdrate", help="Bjontegaard BD-rate and BD-metric of one curve against another")
    p.add_argument("anchor", help="curve file, or results.json#CURVE_ID")
    p.add_argument("test", help="curve file, or results.json#CURVE_ID")
    p.add_argument("--metric", default="psnr", help="metric name (psnr, ms_ssim, lpips_alex, dists, fid ...)")
    p.add_argument("--method", default="pchip", choices=METHODS, help="interpolation (default pchip, as JVET CTC)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)
