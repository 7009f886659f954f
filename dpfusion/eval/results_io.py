"""Results on disk: ``results.json``, CompressAI-style curve files and a per-image CSV; and reading them back.

``-o results.json`` writes three things (all atomically):

``results.json``
    the whole sweep (:class:`~dpfusion.eval.records.Results`): ``format``, ``settings``,
    ``metrics`` (every requested metric, with ``available`` and, if not, ``reason``), ``curves``
    (one per tau and step count of the learned codec, one per baseline), ``per_image`` and ``errors``.
``results/`` (the output path without ``.json``)
    one file per curve in the schema of CompressAI's ``compressai.utils.plot``
    (``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}``), e.g.
    ``results/tau0.json``, ``results/jpeg.json``; so
    ``python -m compressai.utils.plot -f results/*.json -m psnr`` draws them.
``results.csv``
    the ``per_image`` rows.

``load_results`` reads any of these, or CompressAI's own ``eval_model`` output, as ``Results``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.eval.aggregate import COMPRESSAI_ALIASES
from dpfusion.eval.records import FORMAT, Curve, Results
from dpfusion.weights_io import read_json_object

CURVE_MARKER = "dpfusion_curve"
"""The key by which a curve file says it is ours (and where it came from)."""


def curves_folder(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem) if output.suffix == ".json" else output.with_name(output.name + ".curves")


def csv_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.csv")


def curve_document(curve: Curve, results: Results, output: Path) -> dict[str, Any]:
    """One curve in CompressAI's results schema, plus a pointer back to the full results."""
    marker = {"results": output.name, "id": curve.id, "kind": curve.kind, "tau": curve.tau, "steps": curve.steps}
    marker["rates" if curve.learned else "qualities"] = curve.xs
    return {
        "name": curve.name,
        "description": f"{results.description}; curve {curve.id} of {output.name}",
        "results": curve.results,
        CURVE_MARKER: marker,
    }


def _dump(data: Any) -> str:
    try:
        return json.dumps(data, indent=2, allow_nan=False)
    except ValueError as exc:  # a NaN or infinity slipped through: refuse rather than write invalid JSON
        raise DPFusionError(f"results hold a non-finite number ({exc})") from None


def _is_our_curve(path: Path) -> bool:
    try:
        return CURVE_MARKER in read_json_object(path, "curve file")
    except DPFusionError:
        return False


def _write_curves(results: Results, output: Path) -> list[Path]:
    """One file per curve; our own files of an earlier sweep that this one no longer has are removed."""
    folder = curves_folder(output)
    wanted = {f"{c.id}.json" for c in results.curves}
    if folder.is_dir():
        for stale in folder.glob("*.json"):
            if stale.name not in wanted and _is_our_curve(stale):
                stale.unlink()
    written = []
    for curve in results.curves:
        path = folder / f"{curve.id}.json"
        with atomic_path(path) as tmp:
            tmp.write_text(_dump(curve_document(curve, results, output)))
        written.append(path)
    return written


def _write_csv(results: Results, path: Path) -> Path:
    rows = [row.to_dict() for row in results.per_image]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path


def write_results(results: Results, output: str | Path) -> list[Path]:
    """Write results.json, the curve folder and the CSV atomically; returns the paths written."""
    output = Path(output)
    curves = _write_curves(results, output)
    table = _write_csv(results, csv_path(output))
    with atomic_path(output) as tmp:
        tmp.write_text(_dump(results.to_dict()))
    return [output, *curves, table]


def load_results(path: str | Path) -> Results:
    """A results.json, a CompressAI-style curve file, or a folder of curve files, as ``Results``."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise DPFusionError(f"no .json curve files in {path}")
        return Results(name=path.name, curves=[_single_curve(f, read_json_object(f, "results file")) for f in files])
    data = read_json_object(path, "results file")
    if data.get("format") == FORMAT:
        return Results.from_dict(data)
    return Results(name=path.stem, curves=[_single_curve(path, data)])


def _single_curve(path: Path, data: dict[str, Any]) -> Curve:
    """A CompressAI-style file (ours or CompressAI's own ``eval_model`` output) as one curve."""
    results = data.get("results", data)
    if not isinstance(results, dict) or "bpp" not in results:
        raise DPFusionError(f"{path}: no results with a 'bpp' list (CompressAI schema expected)")
    results = dict(results)
    for ours, theirs in COMPRESSAI_ALIASES.items():
        if ours not in results and theirs in results:
            results[ours] = results[theirs]
    curve = Curve(id=path.stem, name=data.get("name", path.stem), kind="curve", results=results)
    marker = data.get(CURVE_MARKER)
    if isinstance(marker, dict):  # one of our curve files: keep what it says about itself
        for key in ("id", "kind", "tau", "steps", "rates", "qualities"):
            if key in marker:
                setattr(curve, key, marker[key])
    return curve
