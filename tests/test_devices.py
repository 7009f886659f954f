"""Devices: ``Model.to``, ``--device cpu|cuda|auto``; entropy coding stays on the CPU whatever the device."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.bitstream import unpack
from dpfusion.cli import main
from dpfusion.devices import resolve_device
from dpfusion.errors import DPFusionError
from dpfusion.fusion.schedule import NoiseSchedule
from tests.fusion.conftest import build_fusion
from tests.test_session import _with_adapter

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture
def model(tiny_gain_codec) -> Model:
    fusion = _with_adapter(build_fusion(tiny_gain_codec.latent_channels, seed=1), tiny_gain_codec)
    return Model(tiny_gain_codec, fusion, NoiseSchedule(num_train_steps=100), image_dial=False)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DPFusionError, match="CUDA is not available"):
        resolve_device("cuda")
    for bad in ("tpu", "gpu", ""):
        with pytest.raises(DPFusionError, match="device"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(DPFusionError, match="1 CUDA device"):
        resolve_device("cuda:3")


def test_model_to_cpu_keeps_every_byte(model, tiny_image):
    data = model.compress(tiny_image)
    before = model.decompress_many(data, [0.0, 0.5, 1.0])
    assert model.to("cpu") is model and model.device == torch.device("cpu")
    assert model.compress(tiny_image) == data
    for a, b in zip(model.decompress_many(data, [0.0, 0.5, 1.0]), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_on_another_device_entropy_coding_stays_on_the_cpu(model, tiny_image):
    """On the meta device (shapes only) g_s and the fusion module run there, the bitstream is unchanged.

    The sender's dial fit scores decoded pixels, which the meta device has none of: it is off here, and the
    entropy-coded strings (all a receiver's latent depends on) are compared with those of a fitted CPU file."""
    data = dataclasses.replace(model, image_dial=False).compress(tiny_image)
    codec = copy.deepcopy(model.codec)
    meta = Model(codec, copy.deepcopy(model.fusion), model.schedule, image_dial=False).to("meta")
    assert codec.model.g_s[0].weight.is_meta and not codec.model.g_a[0].weight.is_meta
    assert meta.compress(tiny_image) == data  # g_a and the entropy models stay on the CPU
    assert unpack(model.compress(tiny_image)).strings == unpack(data).strings
    session = meta.open(data)
    assert session.y_hat.is_meta  # entropy-decoded on the CPU, then moved
    ramp = np.linspace(0, 1, tiny_image.shape[1], dtype=np.float32)[None].repeat(tiny_image.shape[0], 0)
    for image in session.render_tensors([0.0, 0.5, ramp, 1.0]):
        assert image.is_meta and tuple(image.shape) == (1, 3, *tiny_image.shape[:2])
    paper = Model(codec, meta.fusion, model.schedule, "paper", device=meta.device)
    assert all(image.is_meta for image in paper.open(data).render_tensors([0.3, ramp], steps=2))


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["decompress", "plot-grid"])
def test_cuda_without_cuda_is_one_line(tmp_path, tiny_gain_checkpoint, tiny_png, capsys, command):
    dpf = tmp_path / "x.dpf"
    assert main(["compress", str(tiny_png), "-o", str(dpf), "--model", "gain-hyperprior", "--quality", "1"]
                + ["--checkpoint", str(tiny_gain_checkpoint)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([command, str(dpf), "--checkpoint", str(tiny_gain_checkpoint), "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfusion: error:") and "CUDA is not available" in err and "\n" not in err
    assert main(["decompress", str(dpf), "--checkpoint", str(tiny_gain_checkpoint), "--device", "auto",
                 "-o", str(tmp_path / "auto.png")]) == 0  # fmt: skip
    assert (tmp_path / "auto.png").is_file()


@pytest.mark.parametrize("command", ["decompress", "demo", "eval", "plot-grid", "serve"])
def test_every_decoding_command_takes_device(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--device {auto,cpu,cuda}" in capsys.readouterr().out
