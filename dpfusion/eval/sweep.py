"""The evaluation sweep: images x rates x seeds x step counts (all tau of one bitstream in one decode), baselines.

Each unit of work ends in one journal record (see :mod:`dpfusion.eval.journal`):

``kind = "dpfusion"``: one image encoded at one rate with :meth:`Model.compress` (the real
    ``.dpf`` file: ``bpp = 8 * len(file) / pixels``), then decoded at every tau with one
    :meth:`Model.decompress_many` call for one (steps, seed); per-image metric values per tau.
``kind = "jpeg" | "webp"``: one image through Pillow at one quality.

Records carry the signature of what produced them (codec and fusion weights digests, image
content hash), so a restart reuses only records that still describe the same experiment.
Set-level metrics (FID, KID) need the decoded images of a whole group; when they are
requested, every decoded image is also kept as a PNG in an image store beside the results.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from tqdm import tqdm

from dpfusion.api import Model
from dpfusion.codecs.adapter import state_digest
from dpfusion.errors import DPFusionError
from dpfusion.eval import baselines
from dpfusion.eval.journal import Journal, Record
from dpfusion.eval.records import MODEL_KIND, UnitRecord, tau_key
from dpfusion.eval.scoring import Scorer
from dpfusion.fusion.dial import LEGACY_DIAL_VERSION, any_interior
from dpfusion.fusion.image_dial import FIT_SIGNATURE
from dpfusion.fusion.samplers import trained_sampler
from dpfusion.fusion.synthesis_adapter import resolve_precision
from dpfusion.imageio import image_files, load_image, save_png


@dataclass(frozen=True)
class SweepSpec:
    """What to measure. ``baselines`` maps a baseline name (jpeg, webp) to its qualities."""

    rates: tuple[float, ...]
    taus: tuple[float, ...]
    steps: tuple[int, ...] = (10,)
    seeds: tuple[int, ...] = (0,)
    baselines: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, values in (("rates", self.rates), ("taus", self.taus), ("steps", self.steps), ("seeds", self.seeds)):
            if not values:
                raise DPFusionError(f"the sweep needs at least one value in {name}")
            if len(set(values)) != len(values):
                raise DPFusionError(f"{name} has repeated values: {list(values)}")
        if any(not 0.0 <= t <= 1.0 for t in self.taus):
            raise DPFusionError(f"every tau must be in [0, 1], got {list(self.taus)}")
        if any(s < 1 for s in self.steps):
            raise DPFusionError(f"steps must be >= 1, got {list(self.steps)}")


@dataclass(frozen=True)
class DatasetImage:
    path: Path
    name: str  # path relative to the dataset folder, with forward slashes
    digest: str  # SHA-256 of the file, first 16 hex digits


def list_images(folder: str | Path) -> list[DatasetImage]:
    """Every image under ``folder`` (recursively), sorted by relative path."""
    folder = Path(folder)
    images = []
    for path in image_files(folder, "dataset folder"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        images.append(DatasetImage(path, path.relative_to(folder).as_posix(), digest))
    return images


def model_signature(model: Model, taus: Sequence[float] = (0.5,)) -> str:
    """Identifies the codec weights, the fusion weights and the noise schedule that decode; when some tau is
    below 1, the sampler if it is not the one the module was trained for (so journals of the default decode
    stay valid) and the adapter's precision if it resolves to other than float32; and the tau mode (with its
    calibration, and the sender's per-image dial when it fits one) when some tau lies strictly inside (0, 1): at
    0 and 1 every mode decodes the same. The step count and the seed are in each record's key."""
    codec = model.codec
    if model.fusion is None:
        fusion = "none"
    else:
        schedule = json.dumps(model.schedule.config, sort_keys=True) if model.schedule else "{}"
        fusion = state_digest(model.fusion).hex()[:16] + schedule
        sampler = model.sampler or trained_sampler(model.fusion)
        if sampler != trained_sampler(model.fusion) and any(t < 1.0 for t in taus):
            fusion += f":sampler={sampler}"
        precision = resolve_precision(model.precision, model.device)
        if precision != "fp32" and any(t < 1.0 for t in taus):
            fusion += f":precision={precision}"
    dial = ""
    if model.fusion is not None and any_interior(taus):
        dial = f":tau_mode={model.tau_mode}"
        if model.tau_mode == "dial":
            # hashed as schema 1 stored it, with its own version: committed journals keep their keys
            stored = {"version": LEGACY_DIAL_VERSION, **model.dial.config}
            dial += ":" + hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:16]
        if model.fits_image_dial:
            dial += f":image_dial={FIT_SIGNATURE}"
    return f"{codec.name}:{codec.fingerprint.hex()}:fusion={fusion}{dial}"


class ImageStore:
    """Decoded images as PNG files, for the set-level metrics and for inspection."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def model_path(self, image: DatasetImage, rate: float, steps: int, seed: int, tau: float) -> Path:
        group = f"{MODEL_KIND}/rate{rate:g}/steps{steps}_seed{seed}/tau{tau_key(tau)}"
        return self.root / group / Path(image.name).with_suffix(".png")

    def baseline_path(self, image: DatasetImage, kind: str, quality: int) -> Path:
        return self.root / kind / f"q{quality}" / Path(image.name).with_suffix(".png")


def _key(*parts: Any) -> str:
    return json.dumps(parts, separators=(",", ":"))


def _covers(record: Record | None, taus: Sequence[float], metrics: Sequence[str]) -> bool:
    """A journal record can be reused if it holds every requested tau and metric."""
    if record is None:
        return False
    values = record.get("values", {})
    for tau in taus:
        held = values.get(tau_key(tau))
        if held is None or any(m not in held for m in metrics):
            return False
    return True


class Sweep:
    """Runs a :class:`SweepSpec` over a dataset; ``model_for(rate)`` gives the model that encodes at ``rate``."""

    def __init__(
        self,
        images: Sequence[DatasetImage],
        spec: SweepSpec,
        scorer: Scorer,
        journal: Journal,
        model_for: Callable[[float], Model] | None = None,
        store: ImageStore | None = None,
        clock: Callable[[], float] | None = None,
        progress: bool = True,
    ):
        if model_for is None and spec.rates:
            raise DPFusionError("the sweep needs a model for the learned codec")
        self.images = list(images)
        self.spec = spec
        self.scorer = scorer
        self.journal = journal
        self.model_for = model_for
        self.store = store
        self.clock = clock or time.perf_counter
        self.progress = progress
        self._signatures: dict[float, str] = {}

    # -- keys ---------------------------------------------------------------------------------------------------

    def _signature(self, rate: float) -> str:
        if rate not in self._signatures:
            self._signatures[rate] = model_signature(self.model_for(rate), self.spec.taus)
        return self._signatures[rate]

    def model_key(self, image: DatasetImage, rate: float, steps: int, seed: int) -> str:
        return _key(MODEL_KIND, image.name, image.digest, float(rate), steps, seed, self._signature(rate))

    @staticmethod
    def baseline_key(image: DatasetImage, kind: str, quality: int) -> str:
        return _key(kind, image.name, image.digest, int(quality), f"pillow-{PIL.__version__}")

    def _stored(self, paths: Sequence[Path]) -> bool:
        return self.store is None or not self.scorer.set_metrics or all(p.is_file() for p in paths)

    def _model_done(self, image: DatasetImage, rate: float, steps: int, seed: int) -> bool:
        record = self.journal.get(self.model_key(image, rate, steps, seed))
        if not _covers(record, self.spec.taus, self.scorer.image_metrics):
            return False
        return self._stored(
            [self.store.model_path(image, rate, steps, seed, t) for t in self.spec.taus] if self.store else []
        )

    def _baseline_done(self, image: DatasetImage, kind: str, quality: int) -> bool:
        record = self.journal.get(self.baseline_key(image, kind, quality))
        if not _covers(record, [1.0], self.scorer.image_metrics):
            return False
        return self._stored([self.store.baseline_path(image, kind, quality)] if self.store else [])

    # -- work ---------------------------------------------------------------------------------------------------

    def units(self) -> int:
        spec = self.spec
        learned = len(spec.rates) * len(spec.steps) * len(spec.seeds)
        classic = sum(len(q) for q in spec.baselines.values())
        return len(self.images) * (learned + classic)

    def run(self) -> list[UnitRecord]:
        """Do every unit the journal does not hold yet; returns all records of this sweep."""
        bar = tqdm(total=self.units(), disable=not self.progress, dynamic_ncols=True, unit="unit", desc="eval")
        try:
            for image in self.images:
                bar.set_postfix_str(image.name)
                self._image(image, bar)
        finally:
            bar.close()
        return self.records()

    def _image(self, image: DatasetImage, bar: tqdm) -> None:
        reference: np.ndarray | None = None
        for rate in self.spec.rates:
            pending = [
                (steps, seed)
                for steps in self.spec.steps
                for seed in self.spec.seeds
                if not self._model_done(image, rate, steps, seed)
            ]
            bar.update(len(self.spec.steps) * len(self.spec.seeds) - len(pending))
            if pending:
                reference = load_image(image.path) if reference is None else reference
                self._learned(image, reference, rate, pending, bar)
        for kind, qualities in self.spec.baselines.items():
            for quality in qualities:
                if self._baseline_done(image, kind, quality):
                    bar.update(1)
                    continue
                reference = load_image(image.path) if reference is None else reference
                self._baseline(image, reference, kind, quality)
                bar.update(1)

    def _learned(
        self, image: DatasetImage, reference: np.ndarray, rate: float, pending: list[tuple[int, int]], bar: tqdm
    ) -> None:
        model = self.model_for(rate)
        started = self.clock()
        data = model.compress(reference, quality=rate)
        encode_time = self.clock() - started
        pixels = int(reference.shape[0] * reference.shape[1])
        taus = list(self.spec.taus)
        for steps, seed in pending:
            started = self.clock()
            decoded = model.decompress_many(data, taus, steps=steps, seed=seed)
            decode_time = self.clock() - started
            values, errors = self.scorer.score(reference, decoded)
            if self.store is not None and self.scorer.set_metrics:
                for tau, array in zip(taus, decoded, strict=True):
                    save_png(self.store.model_path(image, rate, steps, seed, tau), array)
            record = UnitRecord(
                key=self.model_key(image, rate, steps, seed),
                kind=MODEL_KIND,
                image=image.name,
                rate=float(rate),
                steps=steps,
                seed=seed,
                bytes=len(data),
                pixels=pixels,
                bpp=8.0 * len(data) / pixels,
                encode_time=encode_time,
                decode_time=decode_time,
                values={tau_key(t): v for t, v in zip(taus, values, strict=True)},
                errors=errors,
            )
            self.journal.append(record.to_dict())
            bar.update(1)

    def _baseline(self, image: DatasetImage, reference: np.ndarray, kind: str, quality: int) -> None:
        codec = baselines.BASELINES[kind]
        started = self.clock()
        data = codec.encode(reference, quality)
        encode_time = self.clock() - started
        started = self.clock()
        decoded = baselines.decode(data)
        decode_time = self.clock() - started
        values, errors = self.scorer.score(reference, [decoded])
        if self.store is not None and self.scorer.set_metrics:
            save_png(self.store.baseline_path(image, kind, quality), decoded)
        pixels = int(reference.shape[0] * reference.shape[1])
        record = UnitRecord(
            key=self.baseline_key(image, kind, quality),
            kind=kind,
            image=image.name,
            quality=int(quality),
            bytes=len(data),
            pixels=pixels,
            bpp=8.0 * len(data) / pixels,
            encode_time=encode_time,
            decode_time=decode_time,
            values={tau_key(1.0): values[0]},
            errors=errors,
        )
        self.journal.append(record.to_dict())

    # -- results ------------------------------------------------------------------------------------------------

    def records(self) -> list[UnitRecord]:
        """This sweep's records from the journal, in sweep order (older, unrelated records are left out)."""
        out = []
        for image in self.images:
            for rate in self.spec.rates:
                for steps in self.spec.steps:
                    for seed in self.spec.seeds:
                        out.append(self.journal.get(self.model_key(image, rate, steps, seed)))
            for kind, qualities in self.spec.baselines.items():
                for quality in qualities:
                    out.append(self.journal.get(self.baseline_key(image, kind, quality)))
        if any(r is None for r in out):
            raise DPFusionError("internal error: the sweep finished with units missing from the journal")
        return [UnitRecord.from_dict(r) for r in out]
