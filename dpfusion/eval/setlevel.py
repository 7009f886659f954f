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


class _Originals:
    """The original images' features, computed once (or the error computing them gave, raised for every group)."""

    def __init__(self, sweep: Sweep, metric: str, features: Features):
        self.sweep, self.metric, self.features = sweep, metric, features
        self.value: np.ndarray | DPFusionError | None = None

    def get(self) -> np.ndarray:
        if self.value is None:
            try:
                self.value = self.features(_load([image.path for image in self.sweep.images]), self.metric)
            except DPFusionError as exc:
                self.value = exc  # the originals fail the same way for every group
        if isinstance(self.value, DPFusionError):
            raise self.value
        return self.value


def _group_values(
    group: tuple, paths: list[Path], metrics: list[str], originals: _Originals, features: Features
) -> tuple[dict[str, float | None], dict[str, str]]:
    """One group's value per metric, or None and the reason for every metric when it cannot be computed."""
    try:
        reference = originals.get()
        decoded = features(_load(paths), metrics[0])
        return {m: float(DISTANCES[m](reference, decoded)) for m in metrics}, {}
    except DPFusionError as exc:
        reason = f"{'/'.join(str(g) for g in group)}: {exc}"
        return dict.fromkeys(metrics), dict.fromkeys(metrics, reason)


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
    originals = _Originals(sweep, metrics[0], features)
    for group, paths, keys in tqdm(_groups(sweep), disable=not progress, desc="set metrics", dynamic_ncols=True):
        members = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]
        key = json.dumps(["set", *group, members], separators=(",", ":"))
        record = sweep.journal.get(key)
        if record is None or not all(m in record["values"] for m in metrics):
            result, failed = _group_values(group, paths, metrics, originals, features)
            record = {"key": key, "kind": "set", "group": list(group), "values": result}
            if failed:
                record["errors"] = failed
            sweep.journal.append(record)
        values[group] = record["values"]
        for metric, message in record.get("errors", {}).items():
            errors.setdefault(metric, []).append(message)
    return values, errors
