"""The training runs as library calls (``dpfusion.train.runs``): options, module building, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dpfusion.codecs.loading import load_codec
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.train.loop import RunConfig, TrainConfig
from dpfusion.train.runs import (
    CodecChoice,
    FusionOptions,
    add_adapter,
    initial_fusion,
    new_fusion,
    train_base,
    train_config,
    train_fusion,
)
from tests.train.conftest import tiny_config

torch.set_num_threads(1)
SMALL = {"channels": 8, "units": 1, "heads": 2}


def test_train_config_layers_defaults_file_and_overrides(tmp_path):
    assert train_config("base").lr == 1e-4 and train_config("fusion").lr == 5e-5  # each stage's defaults
    bare, document = tmp_path / "bare.json", tmp_path / "document.json"
    bare.write_text(json.dumps({"steps": 7, "lr": 0.01}))
    document.write_text(json.dumps({"kind": "dpfusion.train", "schema": 2, "config": {"steps": 7, "lr": 0.01}}))
    for file in (bare, document):
        config = train_config("base", file, {"lr": 0.5, "seed": None})
        assert (config.steps, config.lr, config.batch_size) == (7, 0.5, 8)  # file, override, stage default
    run = RunConfig(TrainConfig(steps=9, lr=0.25), None).save_config(tmp_path / "config.json")
    assert (train_config("fusion", run).steps, train_config("fusion", run).lr) == (9, 0.25)  # a run's options
    committed = Path(__file__).resolve().parents[2] / "checkpoints" / "base" / "config.json"  # schema 1
    assert train_config("base", committed, {"device": "cpu"}).steps == 71385
    with pytest.raises(DPFusionError, match="config file not found"):
        train_config("aux", tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(DPFusionError, match="JSON object"):
        train_config("aux", tmp_path / "list.json")


def test_fusion_options_refuse_impossible_combinations():
    with pytest.raises(DPFusionError, match="without --aux"):
        FusionOptions(aux="a", variant="direct").check()
    with pytest.raises(DPFusionError, match="needs --aux"):
        FusionOptions().check()
    FusionOptions(latent_weight=0.0).check()
    FusionOptions(variant="direct").check()


def test_add_adapter_attaches_keeps_and_widens(tiny_gain_codec):
    fusion = LatentFusion(tiny_gain_codec.latent_channels, **SMALL)
    add_adapter(fusion, tiny_gain_codec, 0)
    assert fusion.adapter is None and fusion.config["adapter"] is None
    add_adapter(fusion, tiny_gain_codec, 4)
    assert fusion.adapter.hidden == 4 and fusion.config["adapter"] == fusion.adapter.document()
    kept = fusion.adapter
    add_adapter(fusion, tiny_gain_codec, 0)
    add_adapter(fusion, tiny_gain_codec, 4)
    assert fusion.adapter is kept
    add_adapter(fusion, tiny_gain_codec, 6)
    assert fusion.adapter.hidden == 6 and fusion.config["adapter"]["config"]["hidden"] == 6
    with pytest.raises(DPFusionError, match="--adapter must be 0"):
        add_adapter(fusion, tiny_gain_codec, -1)


def test_new_fusion_measures_its_latent_scale_from_the_seed(tiny_gain_codec, crop_sampler):
    options = FusionOptions(**SMALL)

    def built(seed: int) -> LatentFusion:
        torch.manual_seed(0)  # the rates the probe encodes at come from torch's own generator
        return new_fusion(tiny_gain_codec, crop_sampler, options, seed)

    first, again = built(3), built(3)
    assert first.config == {"latent_channels": tiny_gain_codec.latent_channels, **SMALL, "sampling": "ddim",
                            "adapter": None}  # fmt: skip
    assert torch.equal(first.latent_scale, again.latent_scale)
    assert not torch.equal(first.latent_scale, torch.ones_like(first.latent_scale))
    other = built(4)
    assert not torch.equal(first.latent_scale, other.latent_scale)


def test_train_base_then_fusion_as_library_calls(image_folder, tmp_path):
    config = tiny_config(steps=1, checkpoint_every=1)
    weights = train_base(image_folder, tmp_path / "base", config, N=8, M=12, lambdas=(0.002, 0.01))
    assert json.loads(weights.with_suffix(".json").read_text())["kind"] == "dpfusion.gain-hyperprior"
    choice = CodecChoice("gain-hyperprior", 1.0, weights)
    options = FusionOptions(**SMALL, num_train_steps=50, variant="direct", loss="mse")
    out = train_fusion(image_folder, tmp_path / "fusion", config, choice, options)
    codec = load_codec("gain-hyperprior", 1.0, weights)
    fusion, schedule = load_fusion(out, codec)
    assert fusion.sampling == "direct" and schedule.num_train_steps == 50
    with pytest.raises(DPFusionError, match="is a 'direct' module, not 'ddim'"):
        initial_fusion(out.parent, codec, "ddim")
    tuned, _ = initial_fusion(out.parent, codec, "direct")
    assert tuned.training and tuned.config == fusion.config
