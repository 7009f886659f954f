"""The evaluation's typed records: one unit of sweep work, one per-image row, one curve, one results document.

Each has ``to_dict`` / ``from_dict`` for its JSON form (the journal line, the CSV row, the
``results.json`` entries), so the sweep, the writers, the plots and ``bdrate`` share attributes
instead of string keys. ``from_dict`` turns a missing or mistyped field into a one-line error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dpfusion.errors import DPFusionError

FORMAT = "dpfusion-eval/1"
MODEL_KIND = "dpfusion"
TIMING_KEYS = ("encoding_time", "decoding_time")
Values = dict[str, float | None]


def tau_key(tau: float) -> str:
    """The JSON key of one tau value: ``0.3``, ``1``."""
    return format(float(tau), "g")


def _known(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    """The fields of ``cls`` present in ``data``; a required one missing is a one-line error."""
    if not isinstance(data, dict):
        raise DPFusionError(f"{what}: a JSON object was expected, got {type(data).__name__}")
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [f.name for f in required if f.name not in data]
    if missing:
        raise DPFusionError(f"{what} lacks {', '.join(missing)}")
    return {f.name: data[f.name] for f in fields if f.name in data}


@dataclass
class UnitRecord:
    """One finished unit of a sweep (one image at one rate, steps and seed, or at one baseline quality).

    ``values`` maps a tau key (``tau_key``) to that decode's per-image metric values; a baseline
    holds the single key ``"1"``. This is the journal's line.
    """

    key: str
    kind: str
    image: str
    bytes: int
    pixels: int
    bpp: float
    encode_time: float
    decode_time: float
    values: dict[str, Values]
    rate: float | None = None
    steps: int | None = None
    seed: int | None = None
    quality: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if not self.errors:
            data.pop("errors")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitRecord:
        return cls(**_known(cls, data, "sweep record"))


@dataclass
class ImageRow:
    """One decoded image of the sweep: the ``per_image`` entry and the CSV row."""

    codec: str
    image: str
    rate: float | None
    quality: int | None
    tau: float | None
    steps: int | None
    seed: int | None
    bytes: int
    pixels: int
    bpp: float
    encode_time: float
    decode_time: float
    values: Values = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        values = data.pop("values")
        return {**data, **values}


@dataclass
class Curve:
    """One rate curve: a tau (and step count) of the learned codec, a baseline, or a foreign curve file.

    ``results`` is CompressAI's shape: ``bpp`` and each metric as lists, one entry per point.
    """

    id: str
    name: str
    kind: str
    results: dict[str, list[Any]]
    tau: float | None = None
    steps: int | None = None
    rates: list[float] | None = None
    qualities: list[float] | None = None
    seed_std: dict[str, list[float | None]] | None = None

    @property
    def learned(self) -> bool:
        return self.kind == MODEL_KIND

    @property
    def xs(self) -> list[float]:
        """The operating points: rate indices for the learned codec, qualities for baselines."""
        return list(self.rates if self.learned else self.qualities or [])

    def metrics(self) -> list[str]:
        return [k for k in self.results if k != "bpp" and k not in TIMING_KEYS]

    def values(self, metric: str) -> list[Any]:
        return list(self.results.get(metric, [None] * len(self.results.get("bpp", []))))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for optional in ("rates", "qualities", "seed_std"):
            if data[optional] is None:
                data.pop(optional)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Curve:
        return cls(**_known(cls, data, "curve"))


@dataclass
class Results:
    """A whole evaluation (``results.json``), or the curves read from foreign files."""

    name: str
    curves: list[Curve]
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_image: list[ImageRow] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""
    format: str = FORMAT

    def learned(self, steps: int | None = None) -> list[Curve]:
        """The learned codec's curves (at ``steps`` if given), by tau."""
        curves = [c for c in self.curves if c.learned and (steps is None or c.steps == steps)]
        return sorted(curves, key=lambda c: c.tau)

    def baselines(self) -> list[Curve]:
        return [c for c in self.curves if not c.learned]

    def curve(self, curve_id: str, source: str = "results") -> Curve:
        for curve in self.curves:
            if curve.id == curve_id:
                return curve
        raise DPFusionError(f"{source}: no curve {curve_id!r}; it holds {', '.join(c.id for c in self.curves)}")

    def merged(self, other: Results) -> Results:
        """These results with ``other``'s curves added (another codec's results in the same plots)."""
        return dataclasses.replace(self, curves=self.curves + other.curves)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "name": self.name,
            "description": self.description,
            "settings": self.settings,
            "metrics": self.metrics,
            "unavailable_metrics": {m: i.get("reason") for m, i in self.metrics.items() if not i.get("available")},
            "curves": [c.to_dict() for c in self.curves],
            "per_image": [row.to_dict() for row in self.per_image],
            "errors": self.errors,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        known = _known(cls, {"name": "", **data} if isinstance(data, dict) else data, "results")
        known["curves"] = [Curve.from_dict(c) for c in known["curves"]]
        known["per_image"] = [_row(r) for r in known.get("per_image", [])]
        return cls(**known)


_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(ImageRow) if f.name != "values")


def _row(data: dict[str, Any]) -> ImageRow:
    """A ``per_image`` entry back into its row: every column that is not a field is a metric."""
    fixed = {k: data.get(k) for k in _ROW_FIELDS}
    return ImageRow(**fixed, values={k: v for k, v in data.items() if k not in _ROW_FIELDS})
