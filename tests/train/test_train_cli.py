"""``dpfusion train base|aux|fusion``: exported files that load, config files, resume, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dpfusion import container
from dpfusion.api import Model
from dpfusion.cli import main
from dpfusion.codecs.adapter import state_digest
from dpfusion.codecs.loading import load_codec
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion, read_manifest
from dpfusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from dpfusion.train.export import load_aux_encoder
from tests.decoding import decode_base

torch.set_num_threads(1)

FAST = ["--steps", "2", "--batch-size", "2", "--crop", "64", "--device", "cpu", "--threads", "1", "--log-every", "1"]
FUSION_SIZE = ["--channels", "8", "--units", "1", "--heads", "2", "--T", "50"]


def _train(*argv: str) -> None:
    assert main(["train", *argv]) == 0


@pytest.fixture(scope="module")
def runs(shared_image_folder: Path) -> dict[str, Path]:
    """base -> aux -> fusion, each through the CLI, chained as a user would run them."""
    root = shared_image_folder.parent
    data = str(shared_image_folder)
    _train("base", data, "-o", str(root / "base"), "--N", "8", "--M", "12", "--lambdas", "0.002", "0.01", "0.05", *FAST)
    codec_args = _gain_codec_args(root / "base")
    _train("aux", data, "-o", str(root / "aux"), *codec_args, "--loss", "mse", *FAST)
    _train(
        "fusion",
        data,
        "-o",
        str(root / "fusion"),
        *codec_args,
        "--aux",
        str(root / "aux"),
        "--loss",
        "mse",
        *FAST,
        *FUSION_SIZE,
    )
    return {"data": shared_image_folder, "base": root / "base", "aux": root / "aux", "fusion": root / "fusion",
            "codec_args": codec_args}  # fmt: skip


def _gain_codec_args(base_run: Path) -> list[str]:
    return ["--model", "gain-hyperprior", "--quality", "1", "--codec-checkpoint", str(base_run / "codec.safetensors")]


def _gain_codec(base_run: Path, quality: float = 1.0):
    return load_codec("gain-hyperprior", quality, checkpoint=base_run / "codec.safetensors")


def _codec(runs, quality: float = 1.0):
    return _gain_codec(runs["base"], quality)


def _adapter(folder: Path) -> dict:
    """The synthesis adapter's config in a fusion folder's manifest."""
    return read_manifest(folder)[0].fusion["config"]["adapter"]["config"]


def test_base_exports_a_loadable_codec(runs, tiny_image_factory):
    folder = runs["base"]
    for name in ("codec.safetensors", "codec.json", CHECKPOINT_NAME, "config.json", "log.csv"):
        assert (folder / name).is_file(), name
    written = json.loads((folder / "codec.json").read_text())
    assert written == {"kind": "dpfusion.gain-hyperprior", "schema": 2,
                       "config": {"N": 8, "M": 12, "lambdas": [0.002, 0.01, 0.05]}}  # fmt: skip
    codec = _codec(runs)
    assert codec.model.N == 8 and codec.model.num_rates == 3 and codec.latent_channels == 12
    image = tiny_image_factory(40, 56)
    data = container.compress(codec, image)
    assert decode_base(data, codec=_codec(runs)).image.shape == image.shape  # a second load decodes it
    assert load_checkpoint(folder / CHECKPOINT_NAME)["step"] == 2


def test_aux_exports_and_refuses_other_codecs(runs, gain_checkpoint_factory):
    folder = runs["aux"]
    assert (folder / "aux.safetensors").is_file() and (folder / "aux.json").is_file()
    codec = _codec(runs)
    aux = load_aux_encoder(folder, codec)
    assert state_digest(aux) != state_digest(codec.model.g_a)  # trained, and not the codec's own encoder
    other = load_codec("gain-hyperprior", 1.0, gain_checkpoint_factory(1))
    with pytest.raises(DPFusionError, match=codec.fingerprint.hex()):
        load_aux_encoder(folder, other)


def test_fusion_exports_a_module_that_decodes(runs, tiny_image_factory, gain_checkpoint_factory):
    folder = runs["fusion"]
    assert (folder / "fusion.safetensors").is_file() and (folder / "fusion.json").is_file()
    manifest, _ = read_manifest(folder)
    assert manifest.fusion["config"] == {"latent_channels": 12, "channels": 8, "units": 1, "heads": 2,
                                         "sampling": "ddim", "adapter": None}  # fmt: skip
    assert manifest.schedule.num_train_steps == 50 and manifest.dial is None
    codec = _codec(runs)
    fusion, schedule = load_fusion(folder, codec)
    model = Model(codec, fusion, schedule, image_dial=False)
    data = model.compress(tiny_image_factory(40, 56, seed=2))
    zero, one = model.decompress_many(data, [0.0, 1.0], steps=3)
    np.testing.assert_array_equal(one, decode_base(data, codec=codec).image)
    assert zero.shape == one.shape
    # Another rate of the same weights is fine; other weights are refused, by fingerprint.
    load_fusion(folder, _codec(runs, 2.0))
    other = load_codec("gain-hyperprior", 1.0, gain_checkpoint_factory(1))
    with pytest.raises(DPFusionError, match=f"{codec.fingerprint.hex()}.*{other.fingerprint.hex()}"):
        load_fusion(folder, other)
    with open(folder / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2"] and "latent_mse" in rows[0]


def test_fusion_resume_and_refusal_to_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "fusion"
    base = [str(runs["data"]), "-o", str(out), *runs["codec_args"], "--aux", str(runs["aux"]), "--loss", "mse"]
    _train("fusion", *base, *FAST, *FUSION_SIZE)
    assert main(["train", "fusion", *base, *FAST, *FUSION_SIZE]) == 1
    err = capsys.readouterr().err
    assert "--resume" in err.strip().splitlines()[-1]
    _train("fusion", *base, *FAST, *FUSION_SIZE, "--resume", "--steps", "4")
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 4
    with open(out / "log.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4]
    # Same seed, same flags, straight to 4 steps in another folder: the same weights.
    straight = tmp_path / "straight"
    _train("fusion", *base[:1], "-o", str(straight), *base[3:], *FAST, *FUSION_SIZE, "--steps", "4")
    resumed_state = load_checkpoint(out / CHECKPOINT_NAME)["trainable"]
    for key, value in load_checkpoint(straight / CHECKPOINT_NAME)["trainable"].items():
        assert torch.equal(value, resumed_state[key]), key


def test_fusion_with_synthesis_blocks_exports_and_fine_tunes(runs, tmp_path, tiny_image_factory, capsys):
    base = [str(runs["data"]), *runs["codec_args"], "--aux", str(runs["aux"]), "--loss", "mse", *FAST]
    _train("fusion", base[0], "-o", str(tmp_path / "a"), *base[1:], *FUSION_SIZE, "--adapter", "4",
           "--image-mse-weight", "2")  # fmt: skip
    assert _adapter(tmp_path / "a") == {"positions": [1, 3, 5], "widths": [8, 8, 8], "hidden": 4}
    codec = _codec(runs)
    fusion, schedule = load_fusion(tmp_path / "a", codec)
    assert any(b.outer.weight.abs().sum() > 0 for b in fusion.adapter.blocks)  # trained away from zero
    model = Model(codec, fusion, schedule, image_dial=False)
    data = model.compress(tiny_image_factory(40, 56, seed=2))
    np.testing.assert_array_equal(model.decompress(data, tau=1.0), decode_base(data, codec=codec).image)
    # Blocks are added to a module trained without them; a module that has them keeps their size.
    _train("fusion", base[0], "-o", str(tmp_path / "b"), *base[1:], "--init", str(runs["fusion"]), "--adapter", "4")
    assert _adapter(tmp_path / "b")["hidden"] == 4
    _train("fusion", base[0], "-o", str(tmp_path / "c"), *base[1:], "--init", str(tmp_path / "a"))
    assert _adapter(tmp_path / "c")["hidden"] == 4
    # A wider --adapter grows the --init module's blocks; a narrower one prunes them and records it.
    _train("fusion", base[0], "-o", str(tmp_path / "w"), *base[1:], "--init", str(tmp_path / "a"), "--adapter", "6")
    assert _adapter(tmp_path / "w")["hidden"] == 6
    _train("fusion", base[0], "-o", str(tmp_path / "n"), *base[1:], "--init", str(tmp_path / "w"), "--adapter", "3")
    assert _adapter(tmp_path / "n")["hidden"] == 3
    record = json.loads((tmp_path / "n" / "config.json").read_text())["config"]["stage"]["config"]["init"]["adapter"]
    assert record.startswith("narrowed 6 -> 3, refit R^2 ")
    capsys.readouterr()
    assert main(["train", "fusion", base[0], "-o", str(tmp_path / "d"), *base[1:], "--adapter", "-1"]) == 1
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "dpfusion: error: --adapter must be 0 (none) or a positive width, got -1"
    )


def test_fusion_refuses_an_aux_encoder_of_other_weights(runs, tmp_path, capsys, gain_checkpoint_factory):
    other_args = ["--model", "gain-hyperprior", "--quality", "1", "--codec-checkpoint", str(gain_checkpoint_factory(1))]
    argv = [str(runs["data"]), "-o", str(tmp_path / "f"), *other_args, "--aux", str(runs["aux"]), "--loss", "mse"]
    assert main(["train", "fusion", *argv, *FAST, *FUSION_SIZE]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfusion: error: auxiliary encoder") and "\n" not in err
    assert main(["train", "fusion", *argv[:-4], "--loss", "mse", *FAST]) == 1
    assert "--aux" in capsys.readouterr().err


def test_config_file_is_honoured_and_flags_override_it(runs, tmp_path):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"steps": 5, "batch_size": 3, "crop": 64, "lr": 0.002, "log_every": 2,
                                  "device": "cpu", "threads": 1, "seed": 7}))  # fmt: skip
    out = tmp_path / "aux"
    _train("aux", str(runs["data"]), "-o", str(out), *runs["codec_args"], "--loss", "mse",
           "--config", str(config), "--steps", "3", "--lr", "0.001")  # fmt: skip
    written = json.loads((out / "config.json").read_text())["config"]["train"]["config"]
    assert written["steps"] == 3 and written["lr"] == 0.001  # flags win
    assert written["batch_size"] == 3 and written["seed"] == 7 and written["log_every"] == 2  # from the file
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 3
    with open(out / "log.csv", newline="") as handle:
        assert [r["step"] for r in csv.DictReader(handle)] == ["2", "3"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"steps": 2, "learning_rate": 0.1, "foo": 1}, "unknown training option(s): foo, learning_rate"),
        ("{broken", "invalid JSON"),
        ({"crop": 48}, "multiple of 64"),
    ],
)
def test_bad_config_files_give_one_line_errors(runs, tmp_path, capsys, content, fragment):
    config = tmp_path / "bad.json"
    config.write_text(content if isinstance(content, str) else json.dumps(content))
    argv = ["train", "base", str(runs["data"]), "-o", str(tmp_path / "out"), "--config", str(config)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfusion: error:") and "\n" not in err, err
    assert fragment in err, err
    assert not (tmp_path / "out" / CHECKPOINT_NAME).exists()
    assert (
        main(["train", "base", str(runs["data"]), "-o", str(tmp_path / "o"), "--config", str(tmp_path / "no.json")])
        == 1
    )
    assert "config file not found" in capsys.readouterr().err


def test_seed_controls_the_initial_weights(runs, tmp_path):
    """Two runs with the same --seed in one process give identical weights (initialisation included)."""
    for name in ("a", "b"):
        _train("base", str(runs["data"]), "-o", str(tmp_path / name), "--N", "8", "--M", "12", *FAST, "--steps", "1")
    a = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)["trainable"]
    b = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)["trainable"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_exported_weights_are_the_ema_ones(runs, tmp_path):
    out = tmp_path / "fusion"
    argv = [str(runs["data"]), "-o", str(out), *runs["codec_args"], "--aux", str(runs["aux"]), "--loss", "mse"]
    _train("fusion", *argv, *FAST, *FUSION_SIZE, "--ema-decay", "0.5", "--steps", "3", "--lr", "0.01")
    state = load_checkpoint(out / CHECKPOINT_NAME)
    fusion, _ = load_fusion(out, _codec(runs))
    exported = fusion.state_dict()
    for key, value in state["ema"].items():
        if key != "n_averaged":
            assert torch.equal(exported[key.removeprefix("module.")], value), key
    assert not torch.equal(exported["out.weight"], state["trainable"]["out.weight"])


def test_damaged_aux_folder_is_refused_in_one_line(runs, tmp_path):
    folder = tmp_path / "aux"
    folder.mkdir()
    for name in ("aux.safetensors", "aux.json"):
        (folder / name).write_bytes((runs["aux"] / name).read_bytes())
    codec = _codec(runs)
    load_aux_encoder(folder, codec)
    (folder / "aux.safetensors").write_bytes(b"garbage")
    with pytest.raises(DPFusionError, match="does not fit") as info:
        load_aux_encoder(folder, codec)
    assert "\n" not in str(info.value)
    for text, message in (("{broken", "invalid JSON"), ("[]", "a JSON object was expected"),
                          ("{}", "not a valid dpfusion.aux-encoder config")):  # fmt: skip
        (folder / "aux.json").write_text(text)
        with pytest.raises(DPFusionError, match=message) as info:
            load_aux_encoder(folder, codec)
        assert "\n" not in str(info.value)
    (folder / "aux.json").unlink()
    with pytest.raises(DPFusionError, match="not found"):
        load_aux_encoder(folder, codec)


def test_fusion_init_fine_tunes_a_trained_module(runs, tmp_path, capsys):
    base = [str(runs["data"]), *runs["codec_args"], "--loss", "mse", *FAST]
    codec = _codec(runs)
    start, _ = load_fusion(runs["fusion"], codec)
    out = tmp_path / "tuned"
    # A size flag that disagrees is overruled: the module brings its own shape, latent scale and schedule.
    argv = [*base, "-o", str(out), "--aux", str(runs["aux"]), "--init", str(runs["fusion"]), "--channels", "16"]
    _train("fusion", *argv, "--lr", "1e-9")
    tuned, schedule = load_fusion(out, codec)
    assert tuned.config == start.config and schedule.num_train_steps == 50
    started, ended = start.state_dict(), tuned.state_dict()
    assert torch.equal(started["latent_scale"], ended["latent_scale"])  # kept, not measured again
    for key, value in started.items():  # a near-zero lr: still the weights it started from
        torch.testing.assert_close(ended[key], value, rtol=0, atol=1e-6, msg=key)
    stage = json.loads((out / "config.json").read_text())["config"]["stage"]["config"]
    assert stage["init"] == {"folder": str(runs["fusion"]), "weights": state_digest(start).hex()[:16]}
    direct = [*base, "-o", str(tmp_path / "v1"), "--variant", "direct", "--init", str(runs["fusion"])]
    capsys.readouterr()
    assert main(["train", "fusion", *direct]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfusion: error: --init") and "'ddim' module" in err and "\n" not in err


def test_fusion_init_carries_a_module_to_retrained_codec_weights(runs, tmp_path, capsys):
    data = str(runs["data"])
    other = tmp_path / "base2"  # same architecture and latent width, other weights
    _train("base", data, "-o", str(other), "--N", "8", "--M", "12", "--lambdas", "0.002", "0.01", "--seed", "1", *FAST)
    other_args = _gain_codec_args(other)
    _train("aux", data, "-o", str(tmp_path / "aux2"), *other_args, "--loss", "mse", *FAST)
    codec, other_codec = _codec(runs), _gain_codec(other)
    assert codec.fingerprint != other_codec.fingerprint
    with pytest.raises(DPFusionError, match="trained for"):  # decoding with it is still refused
        load_fusion(runs["fusion"], other_codec)
    out = tmp_path / "carried"
    argv = [data, *other_args, "--aux", str(tmp_path / "aux2"), "--loss", "mse", *FAST, "--init", str(runs["fusion"])]
    _train("fusion", *argv, "-o", str(out), "--lr", "1e-9")
    start, _ = load_fusion(runs["fusion"], codec)
    carried, _ = load_fusion(out, other_codec)  # now a module for the new weights
    torch.testing.assert_close(carried.state_dict(), start.state_dict(), rtol=0, atol=1e-6)
    with pytest.raises(DPFusionError, match="trained for"):
        load_fusion(out, codec)
    wider = tmp_path / "base3"
    _train("base", data, "-o", str(wider), "--N", "8", "--M", "16", "--lambdas", "0.002", "0.01", *FAST)
    wider_args = _gain_codec_args(wider)
    _train("aux", data, "-o", str(tmp_path / "aux3"), *wider_args, "--loss", "mse", *FAST)
    capsys.readouterr()
    argv = [data, *wider_args, "--aux", str(tmp_path / "aux3"), "--loss", "mse", *FAST, "--init", str(runs["fusion"])]
    assert main(["train", "fusion", *argv, "-o", str(tmp_path / "wider")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "dpfusion: error: fusion module expects 12 latent channels, gain-hyperprior has 16"
