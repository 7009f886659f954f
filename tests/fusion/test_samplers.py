"""The sampler registry: names round-trip, every sampler plugs into fuse_latents, x0 is the 1-step DDIM."""

from __future__ import annotations

import pytest
import torch

from dpfusion.api import Model
from dpfusion.errors import DPFusionError
from dpfusion.fusion.decoding import fuse_latents
from dpfusion.fusion.fast_samplers import DirectSampler, X0Sampler
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.sampler import TauDDIMSampler
from dpfusion.fusion.samplers import (
    SAMPLERS,
    get_sampler,
    register_sampler,
    sampler_config,
    sampler_for,
    sampler_from_config,
)
from dpfusion.fusion.schedule import NoiseSchedule

SCHEDULE = NoiseSchedule(num_train_steps=100)


def test_registry_round_trip():
    assert {"ddim": TauDDIMSampler, "direct": DirectSampler, "x0": X0Sampler}.items() <= SAMPLERS.items()
    for name in ("ddim", "direct", "x0"):
        sampler = get_sampler(name, SCHEDULE, 4)
        again = sampler_from_config(sampler_config(sampler), SCHEDULE)
        assert type(again) is type(sampler) is SAMPLERS[name]
        assert sampler_config(again) == {"name": name, "steps": 4}
    with pytest.raises(DPFusionError, match="unknown sampler 'euler'"):
        get_sampler("euler", SCHEDULE, 4)
    for name in ("ddim", "direct", "x0"):
        with pytest.raises(DPFusionError, match="steps"):
            get_sampler(name, SCHEDULE, 0)


def _setup(fusion_factory):
    fusion = fusion_factory(12, seed=7)
    y_hat = torch.randn(1, 12, 3, 5, generator=torch.Generator().manual_seed(3)) * 3
    taus = [torch.full((1, 1, 1, 1), v) for v in (0.0, 0.5, 1.0)]
    return fusion, y_hat, taus


def test_x0_is_one_ddim_step_bit_for_bit_whatever_its_steps(fusion_factory):
    fusion, y_hat, taus = _setup(fusion_factory)
    one_step = fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 1), 5)
    for steps in (1, 10):
        assert torch.equal(fuse_latents(fusion, y_hat, taus, X0Sampler(SCHEDULE, steps), 5), one_step)
    assert not torch.equal(fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 10), 5), one_step)
    assert torch.equal(one_step[2], y_hat[0])


def test_direct_sampler_is_variant_one(fusion_factory):
    fusion, y_hat, taus = _setup(fusion_factory)
    out = fuse_latents(fusion, y_hat, taus, DirectSampler(SCHEDULE), 0)
    y_n = fusion.normalize(y_hat)
    with torch.no_grad():
        direct = y_hat + fusion.scale * (fusion(y_n, y_n, 0.0) - y_n)
    torch.testing.assert_close(out[0], direct[0])
    assert torch.equal(out, fuse_latents(fusion, y_hat, taus, DirectSampler(SCHEDULE), 9))  # no noise involved
    assert torch.equal(out[2], y_hat[0])


def test_the_module_chooses_its_sampler_and_a_direct_module_refuses_noise():
    ddim = LatentFusion(12, channels=8, units=1, heads=2)
    direct = LatentFusion(12, channels=8, units=1, heads=2, sampling="direct")
    assert isinstance(sampler_for(ddim, SCHEDULE, 3), TauDDIMSampler)
    assert isinstance(sampler_for(ddim, SCHEDULE, 3, "x0"), X0Sampler)
    assert isinstance(sampler_for(direct, SCHEDULE, 3), DirectSampler)
    with pytest.raises(DPFusionError, match="direct sampler"):
        sampler_for(direct, SCHEDULE, 3, "ddim")


def test_a_registered_sampler_decodes_through_the_model(monkeypatch, tiny_gain_codec, tiny_image, fusion_factory):
    calls = []

    class Halfway(X0Sampler):
        name = "halfway"

        def sample(self, model, noise, condition, tau, callback=None):
            calls.append(self.steps)
            return 0.5 * (super().sample(model, noise, condition, tau, callback) + condition)

    monkeypatch.setitem(SAMPLERS, "halfway", Halfway)
    assert register_sampler(Halfway) is Halfway
    fusion = fusion_factory(tiny_gain_codec.latent_channels, seed=1)
    data = Model(tiny_gain_codec).compress(tiny_image)
    plain = Model(tiny_gain_codec, fusion, SCHEDULE, sampler="x0").decompress(data, 0.0, steps=2)
    custom = Model(tiny_gain_codec, fusion, SCHEDULE, sampler="halfway").decompress(data, 0.0, steps=2)
    assert calls == [2] and not (custom == plain).all()
    with pytest.raises(DPFusionError, match="unknown sampler"):
        Model(tiny_gain_codec, fusion, SCHEDULE, sampler="nope")
