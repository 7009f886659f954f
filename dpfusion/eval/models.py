"""The models a sweep decodes with: one for a variable-rate codec, one per rate for a fixed-rate one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from dpfusion.api import Model, load
from dpfusion.codecs.registry import codec_spec
from dpfusion.devices import resolve_device
from dpfusion.errors import DPFusionError
from dpfusion.fusion.dial import DEFAULT_TAU_MODE, any_interior


def path_for(template: str | Path | None, rate: float) -> str | None:
    """``--fusion runs/q{rate}`` names one file per rate for fixed-rate codecs."""
    return None if template is None else str(template).replace("{rate}", f"{rate:g}")


class ModelCache:
    """One model for a variable-rate codec; one per rate (paths may hold ``{rate}``) for fixed-rate ones."""

    def __init__(
        self,
        model: str,
        rates: tuple[float, ...] | None = None,
        checkpoint: str | Path | None = None,
        fusion: str | Path | None = None,
        tau_mode: str = DEFAULT_TAU_MODE,
        device: str = "cpu",
        sampler: str | None = None,
        image_dial: bool = True,
        precision: str = "fp32",
    ):
        if not codec_spec(model).variable_rate and rates is None:
            raise DPFusionError(f"{model} is fixed-rate: give its qualities with --rates (e.g. --rates 1,3,5)")
        self.model, self.requested, self.tau_mode = model, rates, tau_mode
        self.checkpoint, self.fusion, self.sampler, self.image_dial = checkpoint, fusion, sampler, image_dial
        self.precision = precision
        self.models: dict[float, Model] = {}
        first_rate = None if rates is None else rates[0]
        self.device = resolve_device(device)
        self.first = self._load(first_rate, self._paths(rates))
        self.variable = self.first.codec.variable_rate

    def _paths(self, rates: tuple[float, ...] | None) -> tuple[str | None, str | None]:
        rate = rates[0] if rates else 0.0
        return path_for(self.checkpoint, rate), path_for(self.fusion, rate)

    def rates(self) -> tuple[float, ...]:
        if self.requested is not None:
            if self.variable:
                for rate in self.requested:
                    self.first.codec.with_quality(rate)  # refuses a rate outside the codec's range before any work
            return self.requested
        if self.variable:
            return tuple(float(r) for r in range(self.first.codec.model.num_rates))
        return (self.first.codec.quality,)

    def fit_dial_only_inside(self, taus: Sequence[float]) -> None:
        """The sender's dial shapes only taus strictly inside (0, 1), so a sweep of the two ends encodes
        plainly: the fit would cost it time and LPIPS's weights and change nothing it decodes."""
        if any_interior(taus):
            return
        self.image_dial = False
        self.first = dataclasses.replace(self.first, image_dial=False)
        self.models = {rate: dataclasses.replace(model, image_dial=False) for rate, model in self.models.items()}

    def __call__(self, rate: float) -> Model:
        if self.variable:
            return self.first
        if rate not in self.models:
            if rate == self.first.codec.quality:
                self.models[rate] = self.first
            else:
                paths = self._paths((rate,))
                self.models[rate] = self._load(rate, paths)
        return self.models[rate]

    def _load(self, rate: float | None, paths: tuple[str | None, str | None]) -> Model:
        return load(
            self.model, rate, *paths, self.tau_mode, self.device, self.sampler, image_dial=self.image_dial,
            precision=self.precision,
        )  # fmt: skip
