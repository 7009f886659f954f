"""CodecAdapter: bit-exact with each CompressAI model's own compress/decompress, deterministic, frozen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding

from dpfusion import container
from dpfusion.codecs.adapter import CodecAdapter, Encoded, weights_fingerprint
from dpfusion.codecs.integer_context import integerize_codec
from dpfusion.codecs.pointwise import use_matrix_products
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor, to_uint8
from tests.decoding import decode_base

CASES = [
    ("bmshj2018-hyperprior", 1),
    ("mbt2018-mean", 1),
    ("mbt2018", 1),
    ("cheng2020-anchor", 1),
    ("cheng2020-attn", 1),
    ("gain-hyperprior", 2),
    ("gain-hyperprior", 1.375),
]
SIZES = [(37, 50), (70, 41)]  # (H, W): one latent grid cell, and 2x1 with odd padding


def _case_id(case: tuple[str, float]) -> str:
    return f"{case[0]}-q{case[1]}"


def _reference(model, image: np.ndarray, quality: float):
    """What CompressAI itself produces, with its entropy-parameter networks evaluated in integers
    (as every dpfusion codec is): pad (replicate, centred) -> compress -> decompress -> crop."""
    model.update()
    integerize_codec(model)
    use_matrix_products(model.g_s)
    rate = {"rate": quality} if hasattr(model, "gains") else {}
    x = to_tensor(image)
    pad, unpad = compute_padding(x.shape[-2], x.shape[-1], min_div=64)
    with torch.no_grad():
        out = model.compress(F.pad(x, pad, mode="replicate"), **rate)
        x_hat = model.decompress(out["strings"], out["shape"], **rate)["x_hat"]
    strings = tuple(bytes(group[0]) for group in out["strings"])
    return strings, x_hat, unpad


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_dpf_decode_is_bit_exact_with_compressai(
    tiny_codec_factory, tiny_model_factory, tiny_image_factory, case, size
):
    architecture, quality = case
    image = tiny_image_factory(*size)
    codec = tiny_codec_factory(architecture, 0, quality)
    data = container.compress(codec, image)

    # A second, independently built codec with the same weights decodes the file.
    decoded = decode_base(data, codec=tiny_codec_factory(architecture, 0, quality))

    ref_strings, ref_x_hat, unpad = _reference(tiny_model_factory(architecture, 0), image, quality)
    expected = to_uint8(F.pad(ref_x_hat, unpad))
    assert decoded.file.strings == ref_strings
    assert expected.shape == decoded.image.shape == (*size, 3)
    assert expected.std() > 20, "reference image is nearly constant: the test would prove little"
    assert np.array_equal(decoded.image, expected)

    # The latent handed to the fusion module is exactly what g_s decodes into the model's x_hat.
    assert decoded.latent.abs().max() > 1, "latent is all zeros: the test would prove little"
    with torch.no_grad():
        x_from_latent = codec.model.g_s(decoded.latent).clamp_(0, 1)
    assert torch.equal(x_from_latent, ref_x_hat)
    assert torch.equal(codec.synthesize(decoded.latent, size), F.pad(ref_x_hat, unpad))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_encoding_is_deterministic(tiny_codec_factory, tiny_image, case) -> None:
    architecture, quality = case
    codec = tiny_codec_factory(architecture, 0, quality)
    first = container.compress(codec, tiny_image)
    assert container.compress(codec, tiny_image) == first
    assert container.compress(tiny_codec_factory(architecture, 0, quality), tiny_image) == first


@pytest.mark.parametrize("case", CASES[:5], ids=_case_id)
def test_latent_shape_and_channels(tiny_codec_factory, tiny_image_factory, case) -> None:
    codec = tiny_codec_factory(*case)
    image = tiny_image_factory(70, 41)
    encoded = codec.encode(to_tensor(image))
    assert encoded.image_size == (70, 41)
    latent = codec.decode_latent(encoded)
    assert latent.shape == (1, codec.latent_channels, 2 * 4, 1 * 4)
    assert codec.latent_channels == (8 if case[0].startswith("cheng") else 12)
    batch = codec.synthesize(torch.cat([latent, latent.flip(0) * 0.5]), encoded.image_size)
    assert batch.shape == (2, 3, 70, 41)
    assert batch.min() >= 0 and batch.max() <= 1


def test_fingerprint_identifies_the_weights(tiny_codec_factory, tiny_model_factory) -> None:
    a = tiny_codec_factory("mbt2018-mean", 0)
    assert len(a.fingerprint) == 8
    assert tiny_codec_factory("mbt2018-mean", 0).fingerprint == a.fingerprint
    assert tiny_codec_factory("mbt2018-mean", 1).fingerprint != a.fingerprint
    # One changed weight, or one changed entropy-coder table, is a different codec.
    model = tiny_model_factory("mbt2018-mean", 0)
    model.update()
    assert weights_fingerprint(model) == a.fingerprint
    with torch.no_grad():
        model.g_s[0].weight[0, 0, 0, 0] += 1e-3
    assert weights_fingerprint(model) != a.fingerprint
    model = tiny_model_factory("mbt2018-mean", 0)
    model.update()
    model.gaussian_conditional._quantized_cdf[0, 1] += 1
    assert weights_fingerprint(model) != a.fingerprint


def test_rate_is_not_part_of_the_fingerprint(tiny_codec_factory) -> None:
    # The rate travels in the quality field; the fingerprint names only the weights.
    assert (
        tiny_codec_factory("gain-hyperprior", 0, 0).fingerprint
        == tiny_codec_factory("gain-hyperprior", 0, 3).fingerprint
    )


def test_adapter_freezes_and_updates_the_model(tiny_model_factory) -> None:
    model = tiny_model_factory("mbt2018", 0).train()
    assert model.entropy_bottleneck._quantized_cdf.numel() == 0
    codec = CodecAdapter(model, "mbt2018", 1)
    assert not codec.model.training
    assert not any(p.requires_grad for p in codec.model.parameters())
    assert codec.model.entropy_bottleneck._quantized_cdf.numel() > 0
    assert codec.quality == 1.0 and not codec.variable_rate


def test_quality_is_stored_at_container_precision(tiny_codec_factory) -> None:
    codec = tiny_codec_factory("gain-hyperprior", 0, 1 / 3)
    assert codec.quality == 0.333


@pytest.mark.parametrize("quality", [float("nan"), float("inf")])
def test_non_finite_quality_is_refused(tiny_codec_factory, quality: float) -> None:
    with pytest.raises(DPFusionError):
        tiny_codec_factory("bmshj2018-hyperprior", 0, quality)


def test_model_without_synthesis_is_refused(tiny_model_factory) -> None:
    model = tiny_model_factory("bmshj2018-hyperprior", 0)
    del model.g_s
    with pytest.raises(DPFusionError, match="g_s"):
        CodecAdapter(model, "bmshj2018-hyperprior", 1)


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 3, 32, 32), (1, 4, 32, 32), (1, 1, 32, 32)])
def test_encode_refuses_anything_but_one_rgb_image(tiny_gain_codec, shape) -> None:
    with pytest.raises(DPFusionError, match="shape"):
        tiny_gain_codec.encode(torch.rand(shape))


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 33), (64, 64), (65, 1), (1, 130)])
def test_pad_then_crop_is_identity(tiny_gain_codec, size) -> None:
    x = torch.rand(1, 3, *size)
    padded = tiny_gain_codec.pad(x)
    assert padded.shape[-2] % tiny_gain_codec.stride == 0 and padded.shape[-1] % tiny_gain_codec.stride == 0
    assert padded.shape[-2] - size[0] < tiny_gain_codec.stride and padded.shape[-1] - size[1] < tiny_gain_codec.stride
    assert torch.equal(tiny_gain_codec.crop(padded, size), x)
    assert tiny_gain_codec.stride == tiny_gain_codec.model.downsampling_factor == 64
    assert tiny_gain_codec.latent_shape(size) == (padded.shape[-2] // 64, padded.shape[-1] // 64)


def test_decode_latent_restores_synthesis_even_on_failure(tiny_gain_codec, tiny_image, monkeypatch) -> None:
    original = tiny_gain_codec.model.g_s
    encoded = tiny_gain_codec.encode(to_tensor(tiny_image))
    tiny_gain_codec.decode_latent(encoded)
    assert tiny_gain_codec.model.g_s is original

    def broken(*args, **kwargs):
        raise RuntimeError("entropy decoder failed")

    monkeypatch.setattr(tiny_gain_codec.model, "decompress", broken)
    with pytest.raises(RuntimeError):
        tiny_gain_codec.decode_latent(encoded)
    assert tiny_gain_codec.model.g_s is original


def test_decompress_is_synthesize_of_decode_latent(tiny_gain_codec, tiny_image) -> None:
    encoded = tiny_gain_codec.encode(to_tensor(tiny_image))
    assert isinstance(encoded, Encoded)
    image = tiny_gain_codec.decompress(encoded)
    assert image.shape == (1, 3, *tiny_image.shape[:2])
    assert torch.equal(image, tiny_gain_codec.synthesize(tiny_gain_codec.decode_latent(encoded), encoded.image_size))
