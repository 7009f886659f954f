"""The dial: calibrated blend weights, their storage, and the three tau modes of the decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_dial, save_fusion
from dpfusion.fusion.dial import LINEAR, DialCalibration, blend, weights_for
from dpfusion.fusion.schedule import NoiseSchedule

SCHEDULE = NoiseSchedule(num_train_steps=100)
CAL = DialCalibration((0.0, 0.5, 1.0), {0.0: (1.0, 0.1, 0.0), 2.0: (1.0, 0.3, 0.0)})


def test_weights_end_exactly_and_follow_the_knots():
    assert CAL.weight(1.0, 0.0) == 0.0 and CAL.weight(0.0, 2.0) == 1.0
    assert CAL.weight(0.5, 0.0) == pytest.approx(0.1)
    assert CAL.weight(0.75, 0.0) == pytest.approx(0.05)
    assert CAL.weight(0.5, 1.0) == pytest.approx(0.2)  # between two calibrated rates
    assert CAL.weight(0.5, 7.0) == pytest.approx(0.3)  # beyond the last: its curve
    assert LINEAR.weight(0.3, 4.0) == pytest.approx(0.7)
    grid = CAL.weight(np.array([[0.0, 0.5], [1.0, 0.25]]), 0.0)
    np.testing.assert_allclose(grid, [[1.0, 0.1], [0.0, 0.55]], rtol=1e-6)
    assert grid.dtype == np.float32


def test_bad_calibrations_are_refused():
    with pytest.raises(DPFusionError, match="knots"):
        DialCalibration((0.0, 0.7, 0.5, 1.0))
    with pytest.raises(DPFusionError, match="fall from 1 to 0"):
        DialCalibration((0.0, 0.5, 1.0), {0.0: (1.0, 0.2, 0.1)})
    with pytest.raises(DPFusionError, match="fall from 1 to 0"):
        DialCalibration((0.0, 0.5, 1.0), {0.0: (1.0, 0.2, 0.4, 0.0)})
    with pytest.raises(DPFusionError, match="version"):  # schema 1 carried a version of its own
        DialCalibration.from_document({**CAL.config, "version": 99})
    assert DialCalibration.from_document({**CAL.config, "version": 1}) == CAL
    with pytest.raises(DPFusionError, match="does not blend"):
        weights_for("paper", CAL, 0.5, 0.0)


def test_round_trip_through_the_module_json(tmp_path, tiny_gain_codec, fusion_factory):
    save_fusion(tmp_path, fusion_factory(tiny_gain_codec.latent_channels), SCHEDULE, tiny_gain_codec)
    assert load_dial(tmp_path) is LINEAR  # a module saved without a dial blends linearly
    save_fusion(tmp_path, fusion_factory(tiny_gain_codec.latent_channels), SCHEDULE, tiny_gain_codec, dial=CAL)
    assert load_dial(tmp_path) == CAL
    assert load_dial(tmp_path / "fusion.safetensors") == CAL
    document = json.loads((tmp_path / "fusion.json").read_text())
    document["config"]["dial"] = {"version": 1}
    (tmp_path / "fusion.json").write_text(json.dumps(document))
    with pytest.raises(DPFusionError, match="not a valid dpfusion.dial config"):
        load_dial(tmp_path)


def test_blend_of_weight_zero_is_the_base_and_of_weight_one_the_realistic_end_itself():
    base, real = torch.rand(1, 3, 4, 5), torch.rand(1, 3, 4, 5)
    assert blend(base, real, 0.0) is base
    assert blend(base, real, np.zeros((4, 5))) is base
    assert blend(base, real, 1.0) is real and blend(None, real, np.ones((4, 5))) is real
    with pytest.raises(ValueError, match="needs the base"):
        blend(None, real, 0.5)
    half = np.full((4, 5), 0.25, dtype=np.float32)
    torch.testing.assert_close(blend(base, real, half), base + 0.25 * (real - base))


@pytest.fixture
def models(tiny_gain_codec, fusion_factory):
    fusion = fusion_factory(tiny_gain_codec.latent_channels)
    return {
        mode: Model(tiny_gain_codec, fusion, SCHEDULE, mode, CAL, image_dial=False)
        for mode in ("dial", "linear", "paper")
    }


def test_the_modes_share_their_ends_and_differ_inside(models, tiny_image):
    data = models["dial"].compress(tiny_image, quality=0.0)
    ends = {mode: m.decompress_many(data, [0.0, 1.0], steps=2) for mode, m in models.items()}
    for mode in ("linear", "paper"):
        for a, b in zip(ends["dial"], ends[mode], strict=True):
            np.testing.assert_array_equal(a, b)
    base, real = (e.astype(float) for e in ends["dial"][::-1])
    # the calibration puts tau = 0.5 at weight 0.1 at this rate: the linear blend's tau = 0.9
    np.testing.assert_array_equal(models["dial"].decompress(data, 0.5, steps=2),
                                  models["linear"].decompress(data, 0.9, steps=2))  # fmt: skip
    linear = models["linear"].decompress(data, 0.5, steps=2).astype(float)
    assert np.abs(linear - (base + real) / 2).max() <= 1.0  # the 8-bit rounding of the float blend
    assert not np.array_equal(models["paper"].decompress(data, 0.5, steps=2), linear.astype(np.uint8))


def test_a_tau_map_blends_per_pixel(models, tiny_image):
    data = models["dial"].compress(tiny_image, quality=0.0)
    base, real = models["dial"].decompress_many(data, [1.0, 0.0], steps=2)
    tau = np.ones(tiny_image.shape[:2], dtype=np.float32)
    tau[:, 20:] = 0.0
    mixed = models["dial"].decompress(data, tau, steps=2)
    np.testing.assert_array_equal(mixed[:, :20], base[:, :20])
    np.testing.assert_array_equal(mixed[:, 20:], real[:, 20:])


def test_unknown_mode_is_refused(tiny_gain_codec):
    with pytest.raises(DPFusionError, match="unknown tau mode"):
        Model(tiny_gain_codec, tau_mode="switch")
