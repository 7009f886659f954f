"""image -> .dpf bytes -> image: the path every command shares."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dpfusion import container
from dpfusion.bitstream import BitstreamError, pack, unpack
from dpfusion.codecs.loading import load_codec
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_tensor
from tests.decoding import decode_base


def test_round_trip_carries_everything(tiny_gain_codec, tiny_image) -> None:
    data = container.compress(tiny_gain_codec, tiny_image, tau=0.3)
    decoded = decode_base(data, codec=tiny_gain_codec)
    file = decoded.file
    assert (file.codec, file.quality, file.fingerprint) == ("gain-hyperprior", 1.0, tiny_gain_codec.fingerprint)
    assert (file.height, file.width) == tiny_image.shape[:2]
    assert file.tau == pytest.approx(0.3, abs=0.5 / 254)
    assert decoded.image.shape == tiny_image.shape and decoded.image.dtype == np.uint8
    encoded = tiny_gain_codec.encode(to_tensor(tiny_image))
    assert file.strings == encoded.strings
    assert torch.equal(decoded.latent, tiny_gain_codec.decode_latent(encoded))
    # A lossy codec, but a codec: the output resembles the input more than a flat grey image does.
    error = np.abs(decoded.image.astype(int) - tiny_image).mean()
    assert error < np.abs(tiny_image.astype(int) - 128).mean() * 2
    assert unpack(container.compress(tiny_gain_codec, tiny_image)).tau is None


@pytest.mark.parametrize("size", [(40, 56), (96, 96), (1, 1)])
def test_container_overhead_is_under_32_bytes(tiny_gain_codec, tiny_image_factory, size) -> None:
    data = container.compress(tiny_gain_codec, tiny_image_factory(*size))
    payload = sum(len(s) for s in unpack(data).strings)
    assert 0 < len(data) - payload < 32


def test_decoding_with_other_weights_names_the_fingerprint(tiny_gain_codec, tiny_codec_factory, tiny_image) -> None:
    data = container.compress(tiny_gain_codec, tiny_image)
    other = tiny_codec_factory("gain-hyperprior", 1, 1.0)
    with pytest.raises(DPFusionError, match="fingerprint") as exc:
        decode_base(data, codec=other)
    assert tiny_gain_codec.fingerprint.hex() in str(exc.value)
    assert other.fingerprint.hex() in str(exc.value)
    assert "\n" not in str(exc.value)


def test_decoding_with_another_checkpoint_is_refused(tiny_gain_codec, gain_checkpoint_factory, tiny_image) -> None:
    data = container.compress(tiny_gain_codec, tiny_image)
    assert decode_base(data, checkpoint=gain_checkpoint_factory(0)).image.shape == tiny_image.shape
    with pytest.raises(DPFusionError, match="fingerprint"):
        decode_base(data, checkpoint=gain_checkpoint_factory(1))


def test_loaded_decoder_matches_the_encoder(tiny_gain_checkpoint, tiny_image) -> None:
    """The decoder knows the rate only from the file; it must use exactly the encoder's (1/3 -> 0.333)."""
    encoder = load_codec("gain-hyperprior", 1 / 3, checkpoint=tiny_gain_checkpoint)
    data = container.compress(encoder, tiny_image)
    with_encoder = decode_base(data, codec=encoder)
    loaded = decode_base(data, checkpoint=tiny_gain_checkpoint)
    assert loaded.file.quality == encoder.quality
    assert torch.equal(loaded.latent, with_encoder.latent)
    assert np.array_equal(loaded.image, with_encoder.image)


def test_corrupt_file_fails_before_any_model_is_loaded(tiny_gain_codec, tiny_image, tmp_path) -> None:
    data = bytearray(container.compress(tiny_gain_codec, tiny_image))
    data[20] ^= 0x10
    with pytest.raises(BitstreamError, match="checksum"):
        decode_base(bytes(data), checkpoint=tmp_path / "absent.safetensors")


def test_file_from_another_codec_is_refused(tiny_codec_factory, tiny_gain_codec, tiny_image) -> None:
    data = container.compress(tiny_codec_factory("mbt2018-mean", 0), tiny_image)
    with pytest.raises(DPFusionError, match="fingerprint"):
        decode_base(data, codec=tiny_gain_codec)


def test_header_over_the_pixel_limit_is_refused_before_decoding(tiny_gain_codec, tiny_image, monkeypatch) -> None:
    file = unpack(container.compress(tiny_gain_codec, tiny_image))
    huge = pack(dataclasses.replace(file, height=100_000, width=100_000))  # valid CRC, same fingerprint

    def never(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(tiny_gain_codec, "decode_latent", never)
    with pytest.raises(DPFusionError, match="100000x100000, padded to 100032x100032 = 10006401024 pixels, is over"):
        decode_base(huge, codec=tiny_gain_codec)
    thin = pack(dataclasses.replace(file, height=1, width=1 << 20))  # 1048576 pixels, 67108864 once padded
    with pytest.raises(DPFusionError, match="1048576x1, padded to 1048576x64 = 67108864 pixels, is over the limit"):
        decode_base(thin, codec=tiny_gain_codec)
