"""Integer entropy parameters: exact (independent of summation order and thread count), close to float,
saturating instead of overflowing, and still differentiable where training needs the float network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dpfusion import container
from dpfusion.codecs.adapter import Encoded
from dpfusion.codecs.integer import ACT_BITS, ACT_FRACTION_BITS, IntegerConv, IntegerNetwork, integerize
from tests.conftest import TINY_ARCHITECTURES, build_tiny_codec, make_image
from tests.decoding import decode_base

LIMIT = 2**ACT_BITS


def _activations(seed: int, shape: tuple[int, ...], extreme: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if extreme:  # every value at the saturation bound: the largest sums the budget allows
        return torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).double() * LIMIT
    return torch.randint(-LIMIT, LIMIT + 1, shape, generator=generator).double()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.booleans(), st.sampled_from([1, 3, 5]), st.integers(1, 40))
def test_an_integer_convolution_is_the_same_in_any_summation_order(seed, extreme, kernel, channels) -> None:
    """Permuting the input channels (and the weights with them) reorders every sum: an inexact
    float sum of values near 2**52 would change; an exact one cannot."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, 6, kernel, padding=kernel // 2)
    with torch.no_grad():
        conv.weight.mul_(torch.logspace(-3, 2, channels)[None, :, None, None])  # wide dynamic range
    a = _activations(seed, (1, channels, 7, 9), extreme)
    order = torch.randperm(channels, generator=torch.Generator().manual_seed(seed + 1))
    pad = (kernel // 2,) * 4
    direct = IntegerConv(conv.weight, conv.bias, pad, 1)(a.clone())
    permuted = IntegerConv(conv.weight[:, order], conv.bias, pad, 1)(a[:, order].clone())
    assert torch.equal(direct, permuted)
    assert torch.equal(direct, direct.round()) and direct.abs().max() <= LIMIT


@pytest.mark.parametrize("architecture", TINY_ARCHITECTURES)
def test_the_integer_hyper_synthesis_is_close_to_the_float_one(architecture) -> None:
    codec = build_tiny_codec(architecture, 0)
    z = (4 * torch.randn(1, codec.model.h_s[0].in_channels, 3, 4)).round() + 0.3
    with torch.no_grad():
        exact = codec.model.h_s(z)
        floating = type(codec.model.h_s).forward(codec.model.h_s, z)
    scale = floating.abs().max()
    assert scale > 0.1
    assert not torch.equal(exact, floating)  # really the integer path
    assert (exact - floating).abs().max() < 0.01 * scale + 4 * 2.0**-ACT_FRACTION_BITS
    assert torch.equal(exact * 2**ACT_FRACTION_BITS, (exact * 2**ACT_FRACTION_BITS).round())


@settings(max_examples=20, deadline=None)
@given(st.floats(1e3, 1e15), st.integers(0, 2**31))
def test_forged_huge_inputs_saturate_instead_of_losing_exactness(magnitude, seed) -> None:
    """A forged file can decode hyper-latents of any size; the network saturates, stays finite and
    gives the same answer again (no overflow past 2**53, where float sums stop being exact)."""
    torch.manual_seed(seed)
    network = nn.Sequential(nn.ConvTranspose2d(4, 6, 5, 2, 2, 1), nn.LeakyReLU(), nn.Conv2d(6, 4, 3, padding=1))
    x = magnitude * torch.randn(1, 4, 3, 3)
    first, again = IntegerNetwork(network)(x), IntegerNetwork(network)(x.clone())
    assert torch.isfinite(first).all() and torch.equal(first, again)
    assert first.abs().max() <= LIMIT / 2**ACT_FRACTION_BITS


def test_training_through_an_integerised_network_keeps_the_float_gradient() -> None:
    network = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    integerize(network)
    x = torch.randn(1, 3, 5, 5, requires_grad=True)
    network(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        coded = network(x)
    assert torch.equal(coded * 2**ACT_FRACTION_BITS, (coded * 2**ACT_FRACTION_BITS).round())


@pytest.mark.parametrize("architecture", TINY_ARCHITECTURES)
def test_y_hat_is_bit_identical_at_one_two_and_four_threads(architecture) -> None:
    codec = build_tiny_codec(architecture, 0)
    data = container.compress(codec, make_image(70, 90, seed=3))
    file = container.parse_for_decoding(data)
    encoded = Encoded(file.strings, (file.height, file.width))
    before = torch.get_num_threads()
    try:
        latents = []
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            latents.append(codec.decode_latent(encoded).numpy().tobytes())
    finally:
        torch.set_num_threads(before)
    assert latents[0] == latents[1] == latents[2]
    assert np.frombuffer(latents[0], np.float32).std() > 0.5


@pytest.mark.parametrize("architecture", TINY_ARCHITECTURES)
def test_tau_one_pixels_are_bit_identical_at_one_two_and_four_threads(architecture) -> None:
    """oneDNN's 1x1 convolution (every GDN) sums in another order at 2 threads; ``g_s`` runs them as
    matrix products (``codecs.pointwise``), so the base image is the same at any thread count."""
    codec = build_tiny_codec(architecture, 0)
    latent = decode_base(container.compress(codec, make_image(128, 192, seed=2)), codec=codec).latent
    before = torch.get_num_threads()
    try:
        images = []
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            images.append(codec.synthesize(latent, (128, 192)))  # float values, before rounding to uint8
    finally:
        torch.set_num_threads(before)
    assert torch.equal(images[0], images[1]) and torch.equal(images[0], images[2])
    assert images[0].std() > 0.05
