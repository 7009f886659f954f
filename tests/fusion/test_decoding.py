"""Decoding through the fusion module: tau = 1 is the base codec bit for bit, for every supported codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion import container
from dpfusion.api import Model
from dpfusion.codecs.adapter import Encoded
from dpfusion.errors import DPFusionError
from dpfusion.fusion.decoding import fuse_latents, tau_to_latent_grid
from dpfusion.fusion.sampler import TauDDIMSampler
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import to_uint8
from tests.conftest import TINY_ARCHITECTURES
from tests.decoding import decode_base

torch.set_num_threads(1)

ARCHITECTURES = TINY_ARCHITECTURES
SCHEDULE = NoiseSchedule(num_train_steps=100)
STRIDE = 64  # every tiny codec's downsampling_factor


def _scalar(value: float) -> torch.Tensor:
    return torch.full((1, 1, 1, 1), value)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_tau_one_is_the_base_codec_bit_for_bit(architecture, tiny_codec_factory, tiny_image_factory, fusion_factory):
    codec = tiny_codec_factory(architecture, 0)
    image = tiny_image_factory(40, 56, seed=1)
    fusion = fusion_factory(codec.latent_channels, seed=7)
    assert torch.count_nonzero(fusion.out.weight) > 0  # a leak of the prediction would show
    model = Model(codec, fusion, SCHEDULE)
    data = container.compress(codec, image)

    base = decode_base(data, codec=codec)
    reference = to_uint8(codec.decompress(Encoded(base.file.strings, (40, 56))))
    np.testing.assert_array_equal(base.image, reference)

    at_one = model.decompress(data, tau=1.0, steps=4)
    assert at_one.dtype == np.uint8 and at_one.shape == (40, 56, 3)
    np.testing.assert_array_equal(at_one, base.image)
    # In a batch with taus that do run the network, the tau = 1 entry is still the base image.
    images = model.decompress_many(data, [0.0, 1.0, 0.5, np.ones((40, 56), np.float32)], steps=4)
    np.testing.assert_array_equal(images[1], base.image)
    np.testing.assert_array_equal(images[3], base.image)
    # tau = 0 is a different image, and a real one.
    assert np.abs(images[0].astype(int) - base.image.astype(int)).max() > 0
    np.testing.assert_array_equal(images[0], model.decompress(data, tau=0.0, steps=4))

    # The formula path (a tau map just below 1 nowhere, exactly 1 on a latent column) keeps y_hat there.
    y_hat = base.latent
    grid = torch.zeros(1, 1, *y_hat.shape[2:])
    grid[..., 0] = 1.0
    fused = fuse_latents(fusion, y_hat, [grid], TauDDIMSampler(SCHEDULE, 4), 0)
    assert torch.equal(fused[..., 0], y_hat[..., 0])
    assert not torch.equal(fused[..., 1:], y_hat[..., 1:])


def test_untrained_fusion_gives_the_base_latent(tiny_codec_factory, tiny_image_factory, fusion_factory):
    """A zero-initialised output layer predicts y_hat, so any tau reproduces y_hat up to float rounding."""
    codec = tiny_codec_factory("mbt2018-mean", 0)
    decoded = decode_base(container.compress(codec, tiny_image_factory(40, 56)), codec=codec)
    fusion = fusion_factory(codec.latent_channels, randomize=False)
    fused = fuse_latents(fusion, decoded.latent, [_scalar(0.0), _scalar(0.5)], TauDDIMSampler(SCHEDULE, 5), 0)
    torch.testing.assert_close(fused, decoded.latent.expand(2, -1, -1, -1), rtol=0, atol=1e-4)


@pytest.fixture
def gain_setup(tiny_gain_codec, tiny_image_factory, fusion_factory):
    codec = tiny_gain_codec
    data = container.compress(codec, tiny_image_factory(64, 64, seed=3))
    y_hat = decode_base(data, codec=codec).latent
    return codec, data, y_hat, fusion_factory(codec.latent_channels, seed=8)


def test_a_tau_map_keeps_y_hat_where_it_is_one(gain_setup):
    codec, data, y_hat, fusion = gain_setup
    tau = np.zeros((64, 64), np.float32)
    tau[:, :32] = 1.0  # 64x64 needs no padding: latent columns 0-1 of 4 see only tau = 1
    grid = tau_to_latent_grid(tau, (64, 64), tuple(y_hat.shape[2:]), STRIDE)
    assert grid.shape == (1, 1, 4, 4)
    assert bool((grid[..., :2] == 1.0).all()) and bool((grid[..., 2:] == 0.0).all())
    fused = fuse_latents(fusion, y_hat, [grid], TauDDIMSampler(SCHEDULE, 6), 1)[0]
    assert torch.equal(fused[..., :2], y_hat[0, ..., :2])
    assert (fused[..., 2:] - y_hat[0, ..., 2:]).abs().max() > 0.1
    # Through the API: the map decodes and differs from both ends of the dial.
    model = Model(codec, fusion, SCHEDULE)
    mapped, zero, one = model.decompress_many(data, [tau, 0.0, 1.0], steps=6, seed=1)
    assert not np.array_equal(mapped, zero) and not np.array_equal(mapped, one)


def test_same_seed_same_output_other_seed_other_output(gain_setup):
    _, _, y_hat, fusion = gain_setup
    taus = [_scalar(0.0)]
    first = fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 5), 11)
    assert torch.equal(first, fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 5), 11))
    assert (first - fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 5), 12)).abs().max() > 1e-3
    # The global RNG plays no part: consuming it in between changes nothing.
    torch.rand(100)
    assert torch.equal(first, fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 5), 11))


def test_images_are_reproducible_through_the_api(gain_setup):
    codec, data, _, fusion = gain_setup
    model = Model(codec, fusion, SCHEDULE)
    a = model.decompress(data, tau=0.0, steps=5, seed=3)
    np.testing.assert_array_equal(a, model.decompress(data, tau=0.0, steps=5, seed=3))
    assert not np.array_equal(a, model.decompress(data, tau=0.0, steps=5, seed=4))


def test_batched_taus_equal_taus_decoded_one_at_a_time(gain_setup):
    _, _, y_hat, fusion = gain_setup
    values = [0.0, 0.3, 1.0, 0.5, 0.8]
    taus = [_scalar(v) for v in values]
    batched = fuse_latents(fusion, y_hat, taus, TauDDIMSampler(SCHEDULE, 5), 2)
    assert batched.shape == (5, *y_hat.shape[1:])
    for i, tau in enumerate(taus):
        alone = fuse_latents(fusion, y_hat, [tau], TauDDIMSampler(SCHEDULE, 5), 2)[0]
        if values[i] == 1.0:
            assert torch.equal(batched[i], alone) and torch.equal(alone, y_hat[0])
        else:
            torch.testing.assert_close(batched[i], alone, rtol=0, atol=1e-5)
    # Different taus really are different latents.
    assert (batched[0] - batched[3]).abs().max() > 1e-3


def test_fuse_latents_rejects_mismatched_inputs(gain_setup, fusion_factory):
    _, _, y_hat, fusion = gain_setup
    with pytest.raises(DPFusionError, match="channels"):
        fuse_latents(fusion_factory(y_hat.shape[1] + 1), y_hat, [_scalar(0.0)], TauDDIMSampler(SCHEDULE, 3), 0)
    with pytest.raises(DPFusionError, match="one latent"):
        fuse_latents(fusion, y_hat.repeat(2, 1, 1, 1), [_scalar(0.0)], TauDDIMSampler(SCHEDULE, 3), 0)
    with pytest.raises(DPFusionError, match="tau grid"):
        fuse_latents(fusion, y_hat, [torch.zeros(1, 1, 2, 3)], TauDDIMSampler(SCHEDULE, 3), 0)
    with pytest.raises(DPFusionError, match="steps"):
        TauDDIMSampler(SCHEDULE, 0)


def test_tau_to_latent_grid():
    assert torch.equal(tau_to_latent_grid(0.25, (40, 56), (4, 4), STRIDE), _scalar(0.25))
    assert torch.equal(tau_to_latent_grid(np.float32(1.0), (40, 56), (4, 4), STRIDE), _scalar(1.0))
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(DPFusionError, match="tau"):
            tau_to_latent_grid(bad, (40, 56), (4, 4), STRIDE)
    with pytest.raises(DPFusionError, match="56x40"):
        tau_to_latent_grid(np.zeros((56, 40), np.float32), (40, 56), (4, 4), STRIDE)
    with pytest.raises(DPFusionError, match=r"\[0, 1\]"):
        tau_to_latent_grid(np.full((40, 56), 2.0, np.float32), (40, 56), (4, 4), STRIDE)
    # An image that needs padding: the map is padded like the image (replicated), then averaged per cell.
    tau = np.full((40, 56), 0.5, np.float32)
    grid = tau_to_latent_grid(tau, (40, 56), (4, 4), STRIDE)
    assert grid.shape == (1, 1, 4, 4)
    torch.testing.assert_close(grid, torch.full((1, 1, 4, 4), 0.5))
