"""load_codec: official weights from the torch hub cache, local checkpoints, and clear refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch
from compressai.models import ScaleHyperprior
from safetensors.torch import save_file

from dpfusion.codecs import loading
from dpfusion.codecs.adapter import weights_fingerprint
from dpfusion.codecs.loading import load_codec
from dpfusion.codecs.zoo import hub_checkpoint_path
from dpfusion.errors import DPFusionError


class NotATensor:
    """Anything a weights-only unpickler must refuse."""


def _assert_one_line(exc: pytest.ExceptionInfo) -> None:
    message = str(exc.value)
    assert "\n" not in message and len(message) < 600, message


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path, as if TORCH_HOME pointed there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() now follows TORCH_HOME
    return tmp_path / "torch" / "hub"


def test_hub_path_follows_torch_home(hub_dir) -> None:
    path = hub_checkpoint_path("bmshj2018-hyperprior", 1)
    assert path.parent == hub_dir / "checkpoints"
    assert path.name.startswith("bmshj2018-hyperprior-1-") and path.name.endswith(".pth.tar")


def test_missing_official_weights_name_the_file_and_folder(hub_dir) -> None:
    expected = hub_checkpoint_path("mbt2018-mean", 3)
    with pytest.raises(DPFusionError) as exc:
        load_codec("mbt2018-mean", 3)
    assert expected.name in str(exc.value)
    assert str(expected.parent) in str(exc.value)
    _assert_one_line(exc)


def test_official_weights_load_from_the_hub_cache(hub_dir) -> None:
    torch.manual_seed(3)
    model = ScaleHyperprior(128, 192)  # bmshj2018-hyperprior quality 1
    model.update()
    path = hub_checkpoint_path("bmshj2018-hyperprior", 1)
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    codec = load_codec("bmshj2018-hyperprior", 1)
    assert codec.name == "bmshj2018-hyperprior" and codec.quality == 1.0
    assert codec.fingerprint == weights_fingerprint(model)
    assert codec.latent_channels == 192


@pytest.mark.parametrize("architecture", ["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor"])
def test_local_training_style_checkpoint(tmp_path, tiny_model_factory, architecture) -> None:
    model = tiny_model_factory(architecture, 0)
    model.update()
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path)
    codec = load_codec(architecture, 2, checkpoint=path)
    assert codec.fingerprint == weights_fingerprint(model)
    assert codec.quality == 2.0


def test_local_data_parallel_checkpoint_keys_are_renamed(tmp_path, tiny_model_factory) -> None:
    model = tiny_model_factory("mbt2018-mean", 0)
    model.update()
    path = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    assert load_codec("mbt2018-mean", 1, checkpoint=path).fingerprint == weights_fingerprint(model)


def test_local_safetensors_checkpoint(tmp_path, tiny_model_factory) -> None:
    model = tiny_model_factory("cheng2020-attn", 0)
    model.update()
    path = tmp_path / "cheng.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert load_codec("cheng2020-attn", 6, checkpoint=path).fingerprint == weights_fingerprint(model)


def test_gain_safetensors_with_config(tiny_gain_checkpoint, tiny_gain_codec, tiny_gain_config) -> None:
    codec = load_codec("gain-hyperprior", tiny_gain_codec.quality, checkpoint=tiny_gain_checkpoint)
    assert codec.variable_rate and list(codec.model.lambdas) == tiny_gain_config["lambdas"]
    assert codec.fingerprint == tiny_gain_codec.fingerprint
    assert load_codec("gain-hyperprior", checkpoint=tiny_gain_checkpoint).quality == 0.0


def test_gain_training_checkpoint_carries_its_config(tmp_path, tiny_gain_model, tiny_gain_config) -> None:
    description = {"stage": "base", **tiny_gain_config}
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 10, "trainable": tiny_gain_model.state_dict(), "stage": json.dumps(description)}, path)
    codec = load_codec("gain-hyperprior", 2.5, checkpoint=path)
    tiny_gain_model.update()
    assert codec.fingerprint == weights_fingerprint(tiny_gain_model)
    assert codec.quality == 2.5


def test_gain_safetensors_beside_a_training_config(tiny_gain_checkpoint, tiny_gain_codec) -> None:
    # A training run writes config.json as {"train": ..., "stage": {...}}.
    config = tiny_gain_checkpoint.with_name("config.json")
    config.write_text(json.dumps({"train": {"steps": 1}, "stage": json.loads(config.read_text())}))
    codec = load_codec("gain-hyperprior", tiny_gain_codec.quality, checkpoint=tiny_gain_checkpoint)
    assert codec.fingerprint == tiny_gain_codec.fingerprint


def test_default_codec_reads_the_shipped_folder(
    tmp_path, tiny_gain_checkpoint, tiny_gain_codec, tiny_gain_config, monkeypatch
) -> None:
    # The shipped layout, in schema 1: the weights, their bare config beside them, the release manifest.
    folder = tmp_path / "default"
    folder.mkdir()
    (folder / "base.safetensors").write_bytes(tiny_gain_checkpoint.read_bytes())
    (folder / "base.json").write_text(json.dumps(tiny_gain_config))
    config = {**tiny_gain_config, "default_rate": 1.0}
    (folder / "config.json").write_text(json.dumps({"base": {**config, "weights": "base.safetensors"}}))
    monkeypatch.setattr(loading, "DEFAULT_DIR", folder)
    for name in ("default", "dpfusion-default"):
        codec = load_codec(name)
        assert codec.name == "dpfusion-default" and codec.quality == 1.0
        assert codec.fingerprint == tiny_gain_codec.fingerprint
    assert load_codec(quality=3).quality == 3.0


def test_missing_default_weights_are_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(loading, "DEFAULT_DIR", tmp_path / "nowhere")
    with pytest.raises(DPFusionError, match="config not found"):
        load_codec()


def test_pickle_with_objects_is_refused(tmp_path, tiny_model_factory) -> None:
    state = tiny_model_factory("mbt2018-mean", 0).state_dict()
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": state, "extra": NotATensor()}, path)
    for name, quality in (("mbt2018-mean", 1), ("gain-hyperprior", 0)):
        with pytest.raises(DPFusionError, match="refused") as exc:
            load_codec(name, quality, checkpoint=path)
        assert "NotATensor" in str(exc.value)
        _assert_one_line(exc)


def test_dict_without_tensors_is_refused(tmp_path) -> None:
    path = tmp_path / "strings.pt"
    torch.save({"state_dict": {"g_a.0.weight": "not a tensor"}}, path)
    with pytest.raises(DPFusionError, match="state dict of tensors"):
        load_codec("mbt2018-mean", 1, checkpoint=path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_damaged_file_is_refused(tmp_path, suffix) -> None:
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(DPFusionError, match="not a loadable") as exc:
        load_codec("bmshj2018-hyperprior", 1, checkpoint=path)
    _assert_one_line(exc)


def test_wrong_shape_state_dict_is_refused(tmp_path, tiny_model_factory) -> None:
    state = tiny_model_factory("bmshj2018-hyperprior", 0).state_dict()
    state["g_s.0.weight"] = torch.zeros(3, 3, 5, 5)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(DPFusionError, match="do not fit bmshj2018-hyperprior") as exc:
        load_codec("bmshj2018-hyperprior", 1, checkpoint=path)
    _assert_one_line(exc)


def test_other_architecture_is_refused(tmp_path, tiny_model_factory) -> None:
    path = tmp_path / "cheng.pt"
    torch.save(tiny_model_factory("cheng2020-anchor", 0).state_dict(), path)
    with pytest.raises(DPFusionError, match="do not fit mbt2018"):
        load_codec("mbt2018", 1, checkpoint=path)


def test_gain_weights_that_do_not_fit_the_config(tiny_gain_checkpoint, tiny_gain_config) -> None:
    config = tiny_gain_checkpoint.with_name("config.json")
    config.write_text(json.dumps({**tiny_gain_config, "M": tiny_gain_config["M"] + 4}))
    with pytest.raises(DPFusionError, match="do not fit the gain-hyperprior config") as exc:
        load_codec("gain-hyperprior", 0, checkpoint=tiny_gain_checkpoint)
    _assert_one_line(exc)


def test_gain_weights_missing_entropy_tables(tmp_path, tiny_gain_model, tiny_gain_config) -> None:
    state = {k: v for k, v in tiny_gain_model.state_dict().items() if "_quantized_cdf" not in k}
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    (tmp_path / "config.json").write_text(json.dumps(tiny_gain_config))
    with pytest.raises(DPFusionError, match="do not fit"):
        load_codec("gain-hyperprior", 0, checkpoint=path)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "config not found"),
        ("{not json", "invalid JSON"),
        (json.dumps({"N": 8}), "lacks or mangles"),
        (json.dumps({"N": 8, "M": 12, "lambdas": []}), "lambdas"),
        (json.dumps({"N": 8, "M": 12, "lambdas": ["x"]}), "lacks or mangles"),
    ],
)
def test_gain_config_problems(tiny_gain_checkpoint, config, message) -> None:
    beside = tiny_gain_checkpoint.with_name("config.json")
    if config is None:
        beside.unlink()
    else:
        beside.write_text(config)
    with pytest.raises(DPFusionError, match=message):
        load_codec("gain-hyperprior", 0, checkpoint=tiny_gain_checkpoint)


def test_missing_checkpoints(tmp_path) -> None:
    for name in ("gain-hyperprior", "mbt2018-mean"):
        with pytest.raises(DPFusionError, match="not found"):
            load_codec(name, 1, checkpoint=tmp_path / "absent.pt")
    with pytest.raises(DPFusionError, match="needs --checkpoint"):
        load_codec("gain-hyperprior", 1)


@pytest.mark.parametrize(
    ("name", "quality"),
    [
        ("bmshj2018-hyperprior", 0),
        ("bmshj2018-hyperprior", 9),
        ("bmshj2018-hyperprior", 2.5),
        ("bmshj2018-hyperprior", None),
        ("bmshj2018-hyperprior", math.nan),
        ("bmshj2018-hyperprior", math.inf),
        ("cheng2020-anchor", 7),
        ("mbt2018", -1),
    ],
)
def test_bad_zoo_quality(hub_dir, name, quality) -> None:
    with pytest.raises(DPFusionError, match="quality|qualities"):
        load_codec(name, quality)


@pytest.mark.parametrize("rate", [-0.5, 3.5, math.nan, math.inf])
def test_bad_gain_rate(tiny_gain_checkpoint, rate) -> None:
    with pytest.raises(DPFusionError, match="rate index"):
        load_codec("gain-hyperprior", rate, checkpoint=tiny_gain_checkpoint)


def test_unknown_codec_name() -> None:
    with pytest.raises(DPFusionError, match="unknown codec 'jpeg2000'"):
        load_codec("jpeg2000", 1)
