"""The optional torch.compile path: traced images equal eager ones, and a compile that fails falls back to eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.fusion import compiled
from dpfusion.fusion.schedule import NoiseSchedule
from tests.fusion.conftest import build_fusion
from tests.test_session import _with_adapter

torch.set_num_threads(1)
REAL_COMPILE = torch.compile


def _model(codec) -> Model:
    fusion = _with_adapter(build_fusion(codec.latent_channels, seed=4), codec)
    return Model(codec, fusion, NoiseSchedule(num_train_steps=100), image_dial=False)


def _decodes(model: Model, data: bytes) -> list[np.ndarray]:
    return model.decompress_many(data, [0.0, 0.4, 1.0])


def test_traced_adapter_decodes_the_eager_images(tiny_gain_codec, tiny_image, monkeypatch):
    """dynamo's trace with the eager backend (no C++ compiler needed): the same arithmetic, so the same bytes."""
    eager = _model(tiny_gain_codec)
    data = eager.compress(tiny_image)
    expected = _decodes(eager, data)
    traced_calls = []

    def eager_backend(fn, **kwargs):
        traced = REAL_COMPILE(fn, backend="eager", **kwargs)
        return lambda *args: traced_calls.append(1) or traced(*args)

    monkeypatch.setattr(torch, "compile", eager_backend)
    model = _model(tiny_gain_codec).compile()
    assert isinstance(model.fusion.adapter.forward, compiled.CompiledOrEager)
    for got, want in zip(_decodes(model, data), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert traced_calls  # the adapted synthesis went through torch.compile


@pytest.mark.parametrize("where", ["at compile", "at the first call"])
def test_a_failing_compile_warns_once_and_decodes_eagerly(tiny_gain_codec, tiny_image, monkeypatch, where):
    eager = _model(tiny_gain_codec)
    data = eager.compress(tiny_image)
    expected = _decodes(eager, data)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken if where == "at compile" else lambda fn, **kw: broken)
    with pytest.warns(UserWarning, match="torch.compile unavailable \\(no C\\+\\+ compiler found\\)") as caught:
        model = _model(tiny_gain_codec).compile()
        first = _decodes(model, data)
    assert len(caught) == 1
    for got, want in zip([*first, *_decodes(model, data)], expected * 2, strict=True):
        np.testing.assert_array_equal(got, want)
