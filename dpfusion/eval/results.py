"""Sweep records -> the results document, CompressAI-style curve files and a per-image CSV.

``-o results.json`` writes three things (all atomically):

``results.json``
    the whole sweep: ``format``, ``settings``, ``metrics`` (every requested metric, with
    ``available`` and, if not, ``reason``), ``curves`` (one per tau and step count of the
    learned codec, one per baseline; each point is one rate or quality, values are means over
    images and seeds), ``per_image`` (one row per image, point, tau and seed) and ``errors``.
``results/`` (the output path without ``.json``)
    one file per curve in the schema of CompressAI's ``compressai.utils.plot``
    (``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}``), e.g.
    ``results/tau0.json``, ``results/tau1.json``, ``results/jpeg.json``; so
    ``python -m compressai.utils.plot -f results/*.json -m psnr`` draws them.
``results.csv``
    the ``per_image`` rows.

Metric values are keyed by the metric name (``psnr``, ``ms_ssim``, ``lpips_alex`` ...); the
curve files also carry CompressAI's names ``psnr-rgb`` and ``ms-ssim-rgb`` for the same values.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.eval.journal import Record

FORMAT = "dpfusion-eval/1"
COMPRESSAI_ALIASES = {"psnr": "psnr-rgb", "ms_ssim": "ms-ssim-rgb"}
CURVE_MARKER = "dpfusion_curve"

SetValues = dict[tuple, dict[str, float | None]]
"""Set-level metric values by group: ``("dpfusion", rate, steps, seed, tau)`` or ``(kind, quality)``."""


def tau_key(tau: float) -> str:
    """The JSON key of one tau value: ``0.3``, ``1``."""
    return format(float(tau), "g")


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


def _rows(records: Iterable[Record], metrics: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        for tau, values in record["values"].items():
            row = {
                "codec": record["kind"],
                "image": record["image"],
                "rate": record.get("rate"),
                "quality": record.get("quality"),
                "tau": float(tau) if record["kind"] == "dpfusion" else None,
                "steps": record.get("steps"),
                "seed": record.get("seed"),
                "bytes": record["bytes"],
                "pixels": record["pixels"],
                "bpp": record["bpp"],
                "encode_time": record["encode_time"],
                "decode_time": record["decode_time"] / len(record["values"]),
            }
            row.update({m: values.get(m) for m in metrics})
            rows.append(row)
    return rows


def _point(
    rows: list[dict[str, Any]], image_metrics: Sequence[str], set_values: list[dict[str, float | None]], set_metrics
) -> dict[str, Any]:
    """One curve point from its per-image rows (all images, all seeds) and its set-level values (per seed)."""
    by_image: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row["bpp"])
    point: dict[str, Any] = {"bpp": _mean([sum(v) / len(v) for v in by_image.values()])}
    seeds: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        seeds[row["seed"]].append(row)
    std: dict[str, float | None] = {}
    for metric in image_metrics:
        point[metric] = _mean([r[metric] for r in rows])
        std[metric] = _std([_mean([r[metric] for r in group]) for group in seeds.values()])
    for metric in set_metrics:
        per_seed = [values.get(metric) for values in set_values]
        point[metric] = _mean(per_seed)
        std[metric] = _std(per_seed)
    point["encoding_time"] = _mean([r["encode_time"] for r in rows])
    point["decoding_time"] = _mean([r["decode_time"] for r in rows])
    return {"point": point, "seed_std": std}


def build_results(
    records: Sequence[Record],
    settings: dict[str, Any],
    metrics_info: dict[str, dict[str, Any]],
    set_values: SetValues | None = None,
    model_name: str = "dpfusion",
    baseline_labels: dict[str, str] | None = None,
    set_errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The results document (see the module docstring) from the sweep's journal records."""
    set_values = set_values or {}
    baseline_labels = baseline_labels or {}
    image_metrics = [m for m, info in metrics_info.items() if info["available"] and info["level"] == "image"]
    set_metrics = [m for m, info in metrics_info.items() if info["available"] and info["level"] == "set"]
    rows = _rows(records, image_metrics)
    several_steps = len(settings.get("steps", [])) > 1
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["codec"] == "dpfusion":
            groups[("dpfusion", row["tau"], row["steps"])].append(row)
        else:
            groups[(row["codec"], None, None)].append(row)
    curves = []
    for (kind, tau, steps), curve_rows in groups.items():
        axis = "rate" if kind == "dpfusion" else "quality"
        by_point: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in curve_rows:
            by_point[row[axis]].append(row)
        xs = sorted(by_point)
        points = []
        for x in xs:
            if kind == "dpfusion":
                seeds = sorted({r["seed"] for r in by_point[x]})
                sets = [set_values.get(("dpfusion", x, steps, s, tau), {}) for s in seeds]
            else:
                sets = [set_values.get((kind, x), {})]
            points.append(_point(by_point[x], image_metrics, sets, set_metrics))
        keys = ["bpp", *image_metrics, *set_metrics, "encoding_time", "decoding_time"]
        results = {k: [p["point"][k] for p in points] for k in keys}
        for ours, theirs in COMPRESSAI_ALIASES.items():
            if ours in results:
                results[theirs] = results[ours]
        if kind == "dpfusion":
            name = f"{model_name} tau={tau:g}" + (f" ({steps} steps)" if several_steps else "")
        else:
            name = baseline_labels.get(kind, kind)
        curve = {
            "id": curve_id(kind, tau, steps, several_steps),
            "name": name,
            "kind": kind,
            "tau": tau,
            "steps": steps,
            ("rates" if kind == "dpfusion" else "qualities"): xs,
            "results": results,
        }
        if kind == "dpfusion" and len(settings.get("seeds", [])) > 1:
            curve["seed_std"] = {m: [p["seed_std"][m] for p in points] for m in [*image_metrics, *set_metrics]}
        curves.append(curve)
    curves.sort(
        key=lambda c: (c["kind"] != "dpfusion", c["kind"], -1 if c["tau"] is None else c["tau"], c["steps"] or 0)
    )
    errors: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for metric, message in record.get("errors", {}).items():
            errors[metric].append(f"{record['image']}: {message}")
    for metric, messages in (set_errors or {}).items():
        errors[metric].extend(messages)
    return {
        "format": FORMAT,
        "name": model_name,
        "description": "dpfusion evaluation sweep: rate x tau (x steps x seeds), baselines on the same images",
        "settings": settings,
        "metrics": metrics_info,
        "unavailable_metrics": {m: info["reason"] for m, info in metrics_info.items() if not info["available"]},
        "curves": curves,
        "per_image": rows,
        "errors": dict(errors),
    }


def curves_folder(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem) if output.suffix == ".json" else output.with_name(output.name + ".curves")


def csv_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.csv")


def curve_document(curve: dict[str, Any], doc: dict[str, Any], output: Path) -> dict[str, Any]:
    """One curve in CompressAI's results schema, plus a pointer back to the full results."""
    x_axis = "rates" if curve["kind"] == "dpfusion" else "qualities"
    return {
        "name": curve["name"],
        "description": f"{doc['description']}; curve {curve['id']} of {output.name}",
        "results": curve["results"],
        CURVE_MARKER: {
            "results": output.name,
            "id": curve["id"],
            "kind": curve["kind"],
            "tau": curve["tau"],
            "steps": curve["steps"],
            x_axis: curve[x_axis],
        },
    }


def _dump(data: Any) -> str:
    try:
        return json.dumps(data, indent=2, allow_nan=False)
    except ValueError as exc:  # a NaN or infinity slipped through: refuse rather than write invalid JSON
        raise DPFusionError(f"results hold a non-finite number ({exc})") from None


def write_results(doc: dict[str, Any], output: str | Path) -> list[Path]:
    """Write results.json, the curve folder and the CSV atomically; returns the paths written."""
    output = Path(output)
    folder = curves_folder(output)
    written = []
    wanted = {f"{c['id']}.json" for c in doc["curves"]}
    if folder.is_dir():  # drop our own curve files of an earlier sweep that this one no longer has
        for stale in folder.glob("*.json"):
            if stale.name not in wanted and CURVE_MARKER in _read_json_quiet(stale):
                stale.unlink()
    for curve in doc["curves"]:
        path = folder / f"{curve['id']}.json"
        with atomic_path(path) as tmp:
            tmp.write_text(_dump(curve_document(curve, doc, output)))
        written.append(path)
    rows = doc["per_image"]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(csv_path(output)) as tmp:
        tmp.write_text(buffer.getvalue())
    written.append(csv_path(output))
    with atomic_path(output) as tmp:
        tmp.write_text(_dump(doc))
    written.insert(0, output)
    return written


def _read_json_quiet(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_results(path: str | Path) -> dict[str, Any]:
    """A results.json, a CompressAI-style curve file, or a folder of curve files, as a results document."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise DPFusionError(f"no .json curve files in {path}")
        curves = [_single_curve(f, _read_json(f)) for f in files]
        return {"format": "curves", "name": path.name, "curves": curves, "metrics": {}, "settings": {}}
    data = _read_json(path)
    if data.get("format") == FORMAT:
        return data
    return {"format": "curves", "name": path.stem, "curves": [_single_curve(path, data)], "metrics": {}, "settings": {}}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DPFusionError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DPFusionError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DPFusionError(f"{path}: not a results file (a JSON object was expected)")
    return data


def _single_curve(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A CompressAI-style file (ours or CompressAI's own ``eval_model`` output) as one curve."""
    results = data.get("results", data)
    if not isinstance(results, dict) or "bpp" not in results:
        raise DPFusionError(f"{path}: no results with a 'bpp' list (CompressAI schema expected)")
    results = dict(results)
    for ours, theirs in COMPRESSAI_ALIASES.items():
        if ours not in results and theirs in results:
            results[ours] = results[theirs]
    marker = data.get(CURVE_MARKER)
    curve = {"id": path.stem, "name": data.get("name", path.stem), "kind": "curve", "tau": None, "steps": None}
    if isinstance(marker, dict):  # one of our curve files: keep what it says about itself
        curve.update({k: marker[k] for k in ("id", "kind", "tau", "steps", "rates", "qualities") if k in marker})
    curve["results"] = results
    return curve
