"""The Python API: Model.compress / decompress / decompress_many, variable rate, refusal of foreign files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion import api, container
from dpfusion.api import Model
from dpfusion.bitstream import unpack
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import save_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from tests.decoding import decode_base

torch.set_num_threads(1)
SCHEDULE = NoiseSchedule(num_train_steps=100)


def _fusion(latent_channels: int, seed: int = 0) -> LatentFusion:
    """A small fusion module with a non-zero output layer (so it changes the image)."""
    torch.manual_seed(seed)
    fusion = LatentFusion(latent_channels, channels=8, units=1, heads=2)
    with torch.no_grad():
        fusion.out.weight.normal_(0, 0.3)
        fusion.out.bias.normal_(0, 0.3)
    return fusion.eval()


@pytest.fixture
def model(tiny_gain_codec) -> Model:
    return Model(tiny_gain_codec, _fusion(tiny_gain_codec.latent_channels), SCHEDULE, image_dial=False)


def test_compress_and_decompress(model, tiny_image, tiny_png):
    data = model.compress(tiny_image)
    assert data == model.compress(tiny_png)  # an array or a path
    base = decode_base(data, codec=model.codec).image
    np.testing.assert_array_equal(model.decompress(data), base)  # tau defaults to 1
    np.testing.assert_array_equal(model.decompress(data, tau=1.0), base)
    realistic = model.decompress(data, tau=0.0, steps=3)
    assert realistic.shape == tiny_image.shape and realistic.dtype == np.uint8
    assert not np.array_equal(realistic, base)
    many = model.decompress_many(data, [0.0, 0.5, 1.0], steps=3)
    assert len(many) == 3
    np.testing.assert_array_equal(many[0], realistic)
    np.testing.assert_array_equal(many[2], base)
    assert not np.array_equal(many[1], many[0])


def test_suggested_tau_is_stored(model, tiny_image):
    data = model.compress(tiny_image, tau=0.4)
    assert unpack(data).tau == pytest.approx(0.4, abs=1 / 254)


def test_with_quality_for_the_gain_codec(model, tiny_image):
    codec = model.codec
    assert model.codec.with_quality(codec.quality) is codec
    other = model.codec.with_quality(2.5)
    assert other.quality == 2.5 and codec.quality == 1.0  # the model's own codec is untouched
    assert other.fingerprint == codec.fingerprint and other.model is codec.model
    low, high = model.compress(tiny_image, quality=0.0), model.compress(tiny_image, quality=3.0)
    assert len(low) < len(high)
    for data, quality in ((low, 0.0), (high, 3.0)):
        assert unpack(data).quality == quality
        # The model was loaded at rate 1 but decodes each file at the rate it was written with.
        expected = decode_base(data, codec=model.codec.with_quality(quality)).image
        np.testing.assert_array_equal(model.decompress(data), expected)
        assert model.decompress(data, tau=0.0, steps=2).shape == tiny_image.shape
    for bad in (-0.5, 3.5, float("nan")):
        with pytest.raises(DPFusionError, match="rate index"):
            model.codec.with_quality(bad)


def test_fixed_rate_codecs_refuse_another_quality(tiny_codec_factory, tiny_image):
    codec = tiny_codec_factory("mbt2018-mean", 0, 3)
    fixed = Model(codec)
    assert fixed.codec.with_quality(3) is codec
    with pytest.raises(DPFusionError, match="fixed-rate"):
        fixed.codec.with_quality(2)
    with pytest.raises(DPFusionError, match="fixed-rate"):
        fixed.compress(tiny_image, quality=4)
    data = fixed.compress(tiny_image)
    np.testing.assert_array_equal(fixed.decompress(data), decode_base(data, codec=codec).image)


def test_tau_below_one_needs_a_fusion_module(tiny_gain_codec, tiny_image):
    bare = Model(tiny_gain_codec)
    data = bare.compress(tiny_image)
    np.testing.assert_array_equal(bare.decompress(data, tau=1.0), decode_base(data, tiny_gain_codec).image)
    for tau in (0.5, np.zeros(tiny_image.shape[:2], np.float32)):
        with pytest.raises(DPFusionError, match="fusion module"):
            bare.decompress(data, tau=tau)
    assert len(bare.decompress_many(data, [1.0, np.ones(tiny_image.shape[:2], np.float32)])) == 2


def test_files_from_other_weights_or_codecs_are_refused(model, tiny_codec_factory, tiny_image, tiny_model_factory):
    other_weights = tiny_codec_factory("gain-hyperprior", 1, 1.0)
    with pytest.raises(DPFusionError, match="fingerprint"):
        model.decompress(container.compress(other_weights, tiny_image))
    with pytest.raises(DPFusionError, match="fingerprint"):
        model.decompress(container.compress(tiny_codec_factory("mbt2018-mean", 0), tiny_image))
    # Same weights under another codec name: refused by name.
    weights = tiny_model_factory("mbt2018-mean", 0)
    as_mean = Model(CodecAdapter(weights, "mbt2018-mean", 1))
    as_hyper = CodecAdapter(tiny_model_factory("mbt2018-mean", 0), "bmshj2018-hyperprior", 1)
    assert as_hyper.fingerprint == as_mean.codec.fingerprint
    with pytest.raises(DPFusionError, match="bmshj2018-hyperprior"):
        as_mean.decompress(container.compress(as_hyper, tiny_image))


def test_invalid_tau_and_steps(model, tiny_image):
    data = model.compress(tiny_image)
    for tau in (-0.1, 1.5):
        with pytest.raises(DPFusionError, match="tau"):
            model.decompress(data, tau=tau)
    with pytest.raises(DPFusionError, match="steps"):
        model.decompress(data, tau=0.5, steps=0)
    with pytest.raises(DPFusionError):
        model.decompress(data[:-1], tau=0.5)  # damaged container


def test_load_with_checkpoint_and_fusion_folder(tmp_path, tiny_gain_checkpoint, tiny_gain_codec, tiny_image):
    fusion = _fusion(tiny_gain_codec.latent_channels, seed=1)
    save_fusion(tmp_path / "fusion", fusion, SCHEDULE, tiny_gain_codec)
    loaded = api.load("gain-hyperprior", 1.0, tiny_gain_checkpoint, tmp_path / "fusion")
    assert loaded.codec.fingerprint == tiny_gain_codec.fingerprint
    assert loaded.schedule == SCHEDULE
    reference = Model(tiny_gain_codec, fusion, SCHEDULE, image_dial=False)
    data = reference.compress(tiny_image)
    np.testing.assert_array_equal(loaded.decompress(data, 0.2, steps=3), reference.decompress(data, 0.2, steps=3))
    bare = api.load("gain-hyperprior", 1.0, tiny_gain_checkpoint)
    assert bare.fusion is None
