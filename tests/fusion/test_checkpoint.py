"""Fusion weights on disk: exact round trip, and refusal of any codec other than the one trained for."""

from __future__ import annotations

import json

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_fusion, save_fusion
from dpfusion.fusion.schedule import NoiseSchedule

torch.set_num_threads(1)
SCHEDULE = NoiseSchedule(num_train_steps=50, beta_start=2e-4, beta_end=3e-2)


@pytest.fixture
def saved(tmp_path, tiny_gain_codec, fusion_factory):
    fusion = fusion_factory(tiny_gain_codec.latent_channels, channels=12, heads=3, seed=2)
    path = save_fusion(tmp_path / "run", fusion, SCHEDULE, tiny_gain_codec, trained_steps=7)
    return tmp_path / "run", path, fusion


def test_round_trip_is_exact(saved, tiny_gain_codec):
    folder, path, fusion = saved
    assert path == folder / WEIGHTS_NAME
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS_NAME, CONFIG_NAME])  # no temp files
    document = json.loads((folder / CONFIG_NAME).read_text())
    assert document["kind"] == "dpfusion.fusion-module" and document["schema"] == 2
    config = document["config"]
    assert config["base"] == {"codec": "gain-hyperprior", "fingerprint": tiny_gain_codec.fingerprint.hex()}
    assert config["trained_steps"] == 7 and config["fusion"] == fusion.document()
    for target in (folder, path):  # the folder or the weights file
        loaded, schedule = load_fusion(target, tiny_gain_codec)
        assert schedule == SCHEDULE
        assert loaded.config == fusion.config
        assert not loaded.training
        reference = fusion.state_dict()
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, reference[key]), key


def test_half_precision_export(tmp_path, tiny_gain_codec, fusion_factory):
    fusion = fusion_factory(tiny_gain_codec.latent_channels, seed=3)
    save_fusion(tmp_path, fusion, SCHEDULE, tiny_gain_codec, half=True)
    loaded, _ = load_fusion(tmp_path, tiny_gain_codec)
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, fusion.state_dict()[key], rtol=1e-3, atol=1e-4)


def test_another_codec_is_refused_by_fingerprint(saved, tiny_codec_factory):
    folder, _, _ = saved
    other = tiny_codec_factory("gain-hyperprior", 1)  # same architecture, other weights
    with pytest.raises(DPFusionError, match=other.fingerprint.hex()) as info:
        load_fusion(folder, other)
    assert "\n" not in str(info.value)


def test_same_weights_at_another_rate_are_accepted(saved, tiny_codec_factory):
    folder, _, _ = saved
    load_fusion(folder, tiny_codec_factory("gain-hyperprior", 0, 2.5))


def test_incomplete_or_damaged_checkpoints_are_refused(saved, tiny_gain_codec):
    folder, path, _ = saved
    config = (folder / CONFIG_NAME).read_text()
    (folder / CONFIG_NAME).write_text("{not json")
    with pytest.raises(DPFusionError, match="invalid JSON"):
        load_fusion(folder, tiny_gain_codec)
    (folder / CONFIG_NAME).write_text(json.dumps({"fusion": {}}))
    with pytest.raises(DPFusionError, match="not a valid dpfusion.fusion-module config"):
        load_fusion(folder, tiny_gain_codec)
    wrong = json.loads(config)
    network = wrong["config"]["fusion"]["config"]
    network["heads"] = 5  # does not divide the width: the network cannot be built
    (folder / CONFIG_NAME).write_text(json.dumps(wrong))
    with pytest.raises(DPFusionError, match="not a valid dpfusion.fusion config"):
        load_fusion(folder, tiny_gain_codec)
    network["channels"] = 16
    network["heads"] = 4
    (folder / CONFIG_NAME).write_text(json.dumps(wrong))
    with pytest.raises(DPFusionError, match="do not fit"):
        load_fusion(folder, tiny_gain_codec)
    (folder / CONFIG_NAME).write_text(config)
    path.write_bytes(b"garbage")
    with pytest.raises(DPFusionError, match="do not fit"):
        load_fusion(folder, tiny_gain_codec)
    path.unlink()
    with pytest.raises(DPFusionError, match="not found"):
        load_fusion(folder, tiny_gain_codec)
    with pytest.raises(DPFusionError, match="not found"):
        load_fusion(folder / "missing", tiny_gain_codec)
