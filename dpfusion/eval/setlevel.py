"""Set-level metrics (FID, KID): one value per group of decoded images, after the per-image sweep.

A group is every image of the dataset decoded at one (rate, steps, seed, tau), or through one
baseline at one quality; it is scored against the originals on 256x256 patches (see
:mod:`dpfusion.metrics.inception`). The decoded images are read back from the sweep's image
store, so this stage also works after a resumed sweep. Inception features of the originals are
computed once and those of a group once for all its set-level metrics; each group's values are
journalled like the per-image units.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dpfusion.errors import DPFusionError
from dpfusion.eval.aggregate import SetValues
from dpfusion.eval.records import MODEL_KIND
from dpfusion.eval.sweep import Sweep
from dpfusion.imageio import load_image, to_tensor
from dpfusion.metrics.fid import frechet_distance
from dpfusion.metrics.inception import inception_features
from dpfusion.metrics.kid import kernel_inception_distance

Features = Callable[[list[torch.Tensor], str], np.ndarray]
DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "fid": frechet_distance,
    "kid": kernel_inception_distance,
}


def _groups(sweep: Sweep) -> list[tuple[tuple, list[Path], list[str]]]:
    """(group, decoded image paths, keys of the records that produced them) for every group of the sweep."""
    spec, store, images = sweep.spec, sweep.store, sweep.images
    groups = []
    for rate in spec.rates:
        for steps in spec.steps:
            for seed in spec.seeds:
                keys = [sweep.model_key(image, rate, steps, seed) for image in images]
                for tau in spec.taus:
                    paths = [store.model_path(image, rate, steps, seed, tau) for image in images]
                    groups.append(((MODEL_KIND, float(rate), steps, seed, float(tau)), paths, keys))
    for kind, qualities in spec.baselines.items():
        for quality in qualities:
            paths = [store.baseline_path(image, kind, quality) for image in images]
            keys = [sweep.baseline_key(image, kind, quality) for image in images]
            groups.append(((kind, int(quality)), paths, keys))
    return groups


def _load(paths: list[Path]) -> list[torch.Tensor]:
    return [to_tensor(load_image(path)) for path in paths]


def set_level_values(
    sweep: Sweep, progress: bool = True, features: Features = inception_features
) -> tuple[SetValues, dict[str, list[str]]]:
    """Values by group and metric, and the reasons for any that could not be computed."""
    metrics = list(sweep.scorer.set_metrics)
    if not metrics or sweep.store is None:
        return {}, {}
    unknown = [m for m in metrics if m not in DISTANCES]
    if unknown:
        raise DPFusionError(f"no set-level implementation for {', '.join(unknown)}")
    values: SetValues = {}
    errors: dict[str, list[str]] = {}
    reference: np.ndarray | DPFusionError | None = None
    groups = _groups(sweep)
    for group, paths, keys in tqdm(groups, disable=not progress, desc="set metrics", dynamic_ncols=True):
        members = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]
        key = json.dumps(["set", *group, members], separators=(",", ":"))
        record = sweep.journal.get(key)
        if record is not None and all(m in record["values"] for m in metrics):
            values[group] = record["values"]
            for metric, message in record.get("errors", {}).items():
                errors.setdefault(metric, []).append(message)
            continue
        result: dict[str, float | None] = {}
        failed: dict[str, str] = {}
        try:
            if reference is None:
                try:
                    reference = features([to_tensor(load_image(image.path)) for image in sweep.images], metrics[0])
                except DPFusionError as exc:
                    reference = exc  # the originals fail the same way for every group: compute once
            if isinstance(reference, DPFusionError):
                raise reference
            decoded = features(_load(paths), metrics[0])
            for metric in metrics:
                result[metric] = float(DISTANCES[metric](reference, decoded))
        except DPFusionError as exc:
            for metric in metrics:
                result[metric] = None
                failed[metric] = f"{'/'.join(str(g) for g in group)}: {exc}"
        record = {"key": key, "kind": "set", "group": list(group), "values": result}
        if failed:
            record["errors"] = failed
            for metric, message in failed.items():
                errors.setdefault(metric, []).append(message)
        sweep.journal.append(record)
        values[group] = result
    return values, errors
