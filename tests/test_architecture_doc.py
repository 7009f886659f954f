"""docs/ARCHITECTURE.md's worked examples are code that runs: a saved part, a codec, a metric and a sampler."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file

from dpfusion.codecs.loading import load_codec
from dpfusion.codecs.registry import codec_spec, unregister_codec
from dpfusion.container import compress
from dpfusion.eval.scoring import Scorer
from dpfusion.metrics.registry import metric_spec, unregister_metric
from tests.decoding import decode_base

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def example(section: str) -> str:
    """The python block under the ``## {section}`` heading."""
    text = DOC.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, re.S)
    assert len(blocks) == 1, f"{section}: expected one python block"
    return blocks[0]


def test_the_config_example_saves_a_part_of_ones_own(tmp_path):
    from dpfusion.configs import KINDS

    scope: dict = {}
    exec(example("Saved parts: one config shape"), scope)
    try:
        smoother = scope["Smoother"](2, width=5)
        loaded = scope["Smoother"].load_config(smoother.save_config(tmp_path / "smoother.json"))
        assert loaded.config == {"channels": 2, "width": 5} and loaded.conv.kernel_size == (5, 5)
    finally:
        KINDS.pop("example.smoother")


def test_the_codec_example_registers_a_codec_that_round_trips(tmp_path, tiny_model_factory, tiny_image):
    exec(example("Adding a codec"), {})
    try:
        assert codec_spec("my-mean-scale").bitstream_id == 180
        model = tiny_model_factory("mbt2018-mean", 3)
        model.update()
        weights = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        codec = load_codec("my-mean-scale", 1, weights)
        decoded = decode_base(compress(codec, tiny_image), codec)
        assert decoded.file.codec == "my-mean-scale" and decoded.image.shape == tiny_image.shape
    finally:
        unregister_codec("my-mean-scale")


def test_the_metric_example_registers_a_scored_metric():
    exec(example("Adding a metric"), {})
    try:
        assert metric_spec("mean_abs_error").better == "lower"
        image = np.full((8, 8, 3), 10, np.uint8)
        values, errors = Scorer(["mean_abs_error"]).score(image, [image + 51])
        assert not errors and values[0]["mean_abs_error"] == pytest.approx(0.2, abs=1e-6)
    finally:
        unregister_metric("mean_abs_error")


def test_the_sampler_example_registers_a_sampler_that_decodes(tiny_gain_codec, tiny_image):
    from dpfusion.api import Model
    from dpfusion.fusion.samplers import SAMPLERS
    from dpfusion.fusion.schedule import NoiseSchedule
    from tests.fusion.conftest import build_fusion

    exec(example("Adding a sampler"), {})
    try:
        model = Model(tiny_gain_codec, build_fusion(tiny_gain_codec.latent_channels, seed=3), NoiseSchedule(100),
                      sampler="noise-once")  # fmt: skip
        data = compress(tiny_gain_codec, tiny_image)
        base, real = model.decompress_many(data, [1.0, 0.0])
        assert np.array_equal(base, Model(tiny_gain_codec).decompress(data))  # tau = 1 stays the codec
        assert not np.array_equal(real, base)  # tau = 0 went through the new sampler
    finally:
        SAMPLERS.pop("noise-once")
