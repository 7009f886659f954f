"""The codec registry: a new CompressAI architecture is one registration, and the container follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from compressai.models import CompressionModel, MeanScaleHyperprior
from PIL import Image
from safetensors.torch import save_file

from dpfusion.bitstream import BitstreamError, DpfFile, pack, unpack
from dpfusion.cli import main
from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.registry import codec_names, codec_spec, register_codec, unregister_codec
from dpfusion.codecs.state import read_state_dict
from dpfusion.errors import DPFusionError
from dpfusion.imageio import to_uint8

NAME = "mbt2018-mean-plugin"
BITSTREAM_ID = 200


def build_plugin(quality: float | None, checkpoint: Path | None) -> tuple[CompressionModel, float]:
    """What a user writes outside dpfusion: CompressAI's class, weights from --checkpoint."""
    return MeanScaleHyperprior.from_state_dict(read_state_dict(checkpoint)), float(quality or 1)


@pytest.fixture
def plugin_weights(tmp_path, tiny_model_factory) -> tuple[Path, MeanScaleHyperprior]:
    model = tiny_model_factory("mbt2018-mean", 7)
    model.update()
    path = tmp_path / "plugin.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    register_codec(NAME, bitstream_id=BITSTREAM_ID, summary="a test plug-in")(build_plugin)
    yield path, model
    unregister_codec(NAME)


def test_a_registered_architecture_round_trips_through_the_cli(plugin_weights, tiny_png, tmp_path, capsys):
    weights, model = plugin_weights
    dpf, png = tmp_path / "x.dpf", tmp_path / "x.png"
    assert main(["compress", str(tiny_png), "-o", str(dpf), "--model", NAME, "--checkpoint", str(weights)]) == 0
    assert main(["info", str(dpf)]) == 0
    assert main(["decompress", str(dpf), "-o", str(png), "--checkpoint", str(weights)]) == 0
    out = capsys.readouterr().out
    assert f"codec: {NAME}" in out
    data = dpf.read_bytes()
    assert data[4] == BITSTREAM_ID and unpack(data).codec == NAME
    reference = CodecAdapter(model, NAME, 1)  # the same weights, decoded without the CLI
    file = unpack(data)
    expected = to_uint8(reference.decompress(Encoded(file.strings, (file.height, file.width))))
    np.testing.assert_array_equal(np.asarray(Image.open(png)), expected)
    assert file.fingerprint == reference.fingerprint


def test_the_cli_lists_registered_codecs(plugin_weights, capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    assert NAME in capsys.readouterr().out
    assert NAME in codec_names() and "default" in codec_names(with_aliases=True)


def test_an_unregistered_codec_has_no_container_id():
    with pytest.raises(BitstreamError, match="no container identifier"):
        pack(DpfFile(NAME, 1.0, bytes(8), 4, 4, (b"x",)))


def test_ids_and_names_are_never_shared(plugin_weights):
    with pytest.raises(DPFusionError, match="bitstream id 200"):
        register_codec("another", bitstream_id=BITSTREAM_ID)(build_plugin)
    with pytest.raises(DPFusionError, match="already taken"):
        register_codec("other", bitstream_id=201, aliases=("default",))(build_plugin)
    with pytest.raises(DPFusionError, match="not a byte"):
        register_codec("other", bitstream_id=256)(build_plugin)
    assert codec_spec("default").name == "dpfusion-default" and codec_spec("default").variable_rate
    assert not codec_spec("mbt2018").variable_rate


def test_unknown_codec_names_the_registered_ones():
    with pytest.raises(DPFusionError, match="unknown codec 'nope'; choose from dpfusion-default, gain-hyperprior"):
        codec_spec("nope")
