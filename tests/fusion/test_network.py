"""The fusion network D(y_t, y_hat, t/T): shapes for any codec, identity at init, condition reuse, time input."""

from __future__ import annotations

import math

import pytest
import torch

from dpfusion.fusion.decoding import fuse_latents
from dpfusion.fusion.network import LatentFusion, timestep_embedding
from dpfusion.fusion.sampler import TauDDIMSampler
from dpfusion.fusion.schedule import NoiseSchedule

torch.set_num_threads(1)


@pytest.mark.parametrize("latent_channels", [5, 12, 24])
@pytest.mark.parametrize("size", [(3, 5), (7, 2), (1, 1), (4, 4)])
def test_any_latent_channels_and_odd_sizes(fusion_factory, latent_channels, size):
    fusion = fusion_factory(latent_channels, channels=8, heads=2, seed=1)
    gen = torch.Generator().manual_seed(0)
    y_hat = torch.randn(2, latent_channels, *size, generator=gen)
    y_t = torch.randn(2, latent_channels, *size, generator=gen)
    out = fusion(y_t, y_hat, torch.tensor([0.1, 0.7]))
    assert out.shape == y_hat.shape
    assert torch.isfinite(out).all()
    assert not torch.equal(out, y_hat)  # randomised: the module does something


@pytest.mark.parametrize("latent_channels", [5, 12, 24])
def test_untrained_module_returns_y_hat_exactly(fusion_factory, latent_channels):
    fusion = fusion_factory(latent_channels, channels=8, heads=2, randomize=False)
    assert torch.count_nonzero(fusion.out.weight) == 0 and torch.count_nonzero(fusion.out.bias) == 0
    gen = torch.Generator().manual_seed(3)
    y_hat = torch.randn(3, latent_channels, 3, 5, generator=gen)
    y_t = torch.randn(3, latent_channels, 3, 5, generator=gen)
    for t in (0.0, 0.5, 0.999):
        assert torch.equal(fusion(y_t, y_hat, t), y_hat)


@pytest.mark.parametrize(("channels", "heads"), [(8, 2), (12, 3), (16, 4), (9, 3), (7, 1)])
def test_internal_widths_including_odd_ones(channels, heads):
    fusion = LatentFusion(6, channels=channels, units=1, heads=heads)
    y = torch.randn(1, 6, 3, 4)
    assert fusion(y, y, 0.5).shape == y.shape


def test_heads_must_divide_channels():
    with pytest.raises(ValueError):
        LatentFusion(6, channels=8, units=1, heads=3)


def test_time_changes_the_output(fusion_factory):
    fusion = fusion_factory(12, seed=2)
    gen = torch.Generator().manual_seed(1)
    y_hat, y_t = torch.randn(1, 12, 4, 4, generator=gen), torch.randn(1, 12, 4, 4, generator=gen)
    outputs = [fusion(y_t, y_hat, t) for t in (0.0, 0.1, 0.5, 0.99)]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert (outputs[i] - outputs[j]).abs().max() > 1e-3
    # A float and a one-element tensor are the same time input.
    assert torch.equal(fusion(y_t, y_hat, 0.5), fusion(y_t, y_hat, torch.tensor([0.5])))


def test_per_sample_times_and_precomputed_condition(fusion_factory):
    fusion = fusion_factory(12, seed=4)
    gen = torch.Generator().manual_seed(2)
    y_hat = torch.randn(1, 12, 3, 5, generator=gen)
    y_t = torch.randn(3, 12, 3, 5, generator=gen)
    t = torch.tensor([0.05, 0.5, 0.95])
    cond = fusion.encode_condition(y_hat)
    batched = fusion(y_t, y_hat.expand(3, -1, -1, -1), t, cond)  # cond (1, ...) broadcast over the batch
    for i in range(3):
        single = fusion(y_t[i : i + 1], y_hat, float(t[i]))  # condition computed inside
        torch.testing.assert_close(batched[i : i + 1], single, rtol=0, atol=1e-5)


def test_condition_branch_matters(fusion_factory):
    fusion = fusion_factory(12, seed=5)
    gen = torch.Generator().manual_seed(4)
    y_t = torch.randn(1, 12, 4, 4, generator=gen)
    a, b = torch.randn(1, 12, 4, 4, generator=gen), torch.randn(1, 12, 4, 4, generator=gen)
    # Same residual base (y_hat) but a different condition feature: the prediction changes.
    assert not torch.allclose(fusion(y_t, a, 0.3), fusion(y_t, a, 0.3, fusion.encode_condition(b)))


def test_normalisation_uses_the_latent_scale(fusion_factory):
    fusion = fusion_factory(5, seed=0)
    y = torch.randn(2, 5, 3, 3)
    torch.testing.assert_close(fusion.normalize(y) * fusion.scale, y)
    torch.testing.assert_close(fusion.normalize(y)[:, 2], y[:, 2] / fusion.latent_scale[2])
    # The scale is a buffer: it travels with the state dict.
    assert "latent_scale" in fusion.state_dict()


def test_timestep_embedding_values():
    t = torch.tensor([0.0, 0.25, 1.0])
    emb = timestep_embedding(t, 8)
    assert emb.shape == (3, 8)
    assert torch.equal(emb[0, :4], torch.zeros(4)) and torch.equal(emb[0, 4:], torch.ones(4))
    freq1 = math.exp(-math.log(10_000.0) / 4)
    torch.testing.assert_close(emb[1, 1], torch.tensor(math.sin(250.0 * freq1)))
    # Distinct times give distinct features (the network can tell steps apart).
    assert (emb[1] - emb[2]).abs().max() > 0.1


def test_condition_is_encoded_once_per_image(fusion_factory):
    """fuse_latents runs the condition branch once for all steps and all taus; the main path once per step."""
    fusion = fusion_factory(12, seed=6)
    schedule = NoiseSchedule(num_train_steps=100)
    calls = {"cond": 0, "forward": [], "cond_given": []}
    original_cond, original_forward = fusion.encode_condition, fusion.forward

    def counting_cond(y):
        calls["cond"] += 1
        return original_cond(y)

    def counting_forward(y_t, y_hat, t, cond=None):
        calls["forward"].append(y_t.shape[0])
        calls["cond_given"].append(cond is not None)
        return original_forward(y_t, y_hat, t, cond)

    fusion.encode_condition = counting_cond
    fusion.forward = counting_forward
    y_hat = torch.randn(1, 12, 3, 5)
    taus = [torch.full((1, 1, 1, 1), v) for v in (0.0, 0.4, 0.8)]
    out = fuse_latents(fusion, y_hat, taus, TauDDIMSampler(schedule, 10), 0)
    assert out.shape == (3, 12, 3, 5)
    assert calls["cond"] == 1
    assert calls["forward"] == [3] * 10  # one batched network call per step, all taus together
    assert all(calls["cond_given"])
