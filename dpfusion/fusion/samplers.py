"""Samplers by name, in the shape of diffusers' schedulers: a class per sampler, built from a schedule and
a step count, saved as ``{"name", "steps"}`` and rebuilt with :func:`sampler_from_config`.

Every sampler has k-diffusion's call ``sample(model, noise, condition, tau, callback=None)``, where
``model(sample, t_over_T)`` predicts the normalised clean latent. A new sampler is a class with a
``name`` and that method, registered with :func:`register_sampler`; ``fuse_latents`` and the decode
session take any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from torch import Tensor

from dpfusion.errors import DPFusionError
from dpfusion.fusion.fast_samplers import DirectSampler, X0Sampler
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.sampler import Denoiser, TauDDIMSampler
from dpfusion.fusion.schedule import NoiseSchedule

DEFAULT_SAMPLER = "ddim"


class Sampler(Protocol):
    name: str
    steps: int

    def sample(
        self,
        model: Denoiser,
        noise: Tensor,
        condition: Tensor,
        tau: Tensor | float,
        callback: Callable[[int, int], None] | None = None,
    ) -> Tensor: ...


SAMPLERS: dict[str, type] = {}


def register_sampler(cls: type) -> type:
    """Make a sampler class available by its ``name`` (usable as a decorator)."""
    SAMPLERS[cls.name] = cls
    return cls


for _cls in (TauDDIMSampler, DirectSampler, X0Sampler):
    register_sampler(_cls)


def get_sampler(name: str, schedule: NoiseSchedule, steps: int) -> Sampler:
    if name not in SAMPLERS:
        raise DPFusionError(f"unknown sampler {name!r}; choose from {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](schedule, steps)


def sampler_config(sampler: Sampler) -> dict[str, Any]:
    return {"name": sampler.name, "steps": sampler.steps}


def sampler_from_config(config: dict[str, Any], schedule: NoiseSchedule) -> Sampler:
    return get_sampler(config["name"], schedule, int(config["steps"]))


def trained_sampler(fusion: LatentFusion) -> str:
    """The sampler a module was trained for, the one it decodes with unless told otherwise."""
    return fusion.config.get("sampling", DEFAULT_SAMPLER)


def sampler_for(fusion: LatentFusion, schedule: NoiseSchedule, steps: int, name: str | None = None) -> Sampler:
    """The sampler a module decodes with: ``name``, else the one it was trained for. A module trained
    without diffusion (``sampling = "direct"``) cannot be sampled from noise."""
    trained = trained_sampler(fusion)
    if trained == "direct" and name not in (None, "direct"):
        raise DPFusionError(f"this fusion module was trained for the direct sampler, not {name!r}")
    return get_sampler(name or trained, schedule, steps)
