"""One config mechanism: every saved kind round-trips, schema-1 files still load, bad documents are one line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from dpfusion.codecs import loading
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.codecs.loading import ReleaseManifest
from dpfusion.configs import KINDS, Configurable
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import CONFIG_NAME, FusionManifest, load_fusion, save_fusion
from dpfusion.fusion.dial import DialCalibration
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.train.aux_stage import AuxEncoderConfig
from dpfusion.train.fusion_stage import FusionTraining
from dpfusion.train.loop import RunConfig, TrainConfig
from dpfusion.weights_io import save_weights

torch.set_num_threads(1)
MODULES = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORDS = settings(max_examples=60, deadline=None)

positive = st.floats(1e-4, 0.5, allow_nan=False)
names = st.text("abcdefgh-", min_size=1, max_size=12)
base_identity = st.builds(
    lambda codec, fp: {"codec": codec, "fingerprint": fp}, names, st.text("0123456789abcdef", min_size=16, max_size=16)
)


@st.composite
def adapters(draw) -> SynthesisAdapter:
    count = draw(st.integers(1, 3))
    positions = sorted(draw(st.sets(st.integers(0, 9), min_size=count, max_size=count)))
    widths = draw(st.lists(st.integers(1, 6), min_size=count, max_size=count))
    return SynthesisAdapter(positions, widths, draw(st.integers(1, 6)))


@st.composite
def fusions(draw) -> LatentFusion:
    heads = draw(st.sampled_from([1, 2, 4]))
    channels = heads * draw(st.integers(1, 3))
    adapter = draw(st.none() | adapters())
    sampling = draw(st.sampled_from(["ddim", "direct"]))
    fusion = LatentFusion(draw(st.integers(1, 6)), channels, draw(st.integers(1, 2)), heads, sampling, adapter)
    torch.manual_seed(draw(st.integers(0, 2**16)))
    for param in fusion.parameters():
        torch.nn.init.normal_(param)  # the zero-initialised output conv too: states must really differ
    return fusion


gains = st.builds(
    GainMeanScaleHyperprior,
    st.integers(2, 6),
    st.integers(2, 6),
    st.lists(positive, min_size=1, max_size=4),
)
schedules = st.builds(
    lambda steps, start, extra: NoiseSchedule(steps, start, min(start + extra, 0.99)),
    st.integers(2, 2000),
    positive,
    st.floats(0, 0.4),
)


@st.composite
def dials(draw) -> DialCalibration:
    inner = sorted(draw(st.sets(st.floats(0.01, 0.99), max_size=4)))
    knots = (0.0, *inner, 1.0)
    rates = draw(st.sets(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.25]), max_size=3))
    weights = {}
    for rate in rates:
        middle = sorted(draw(st.lists(st.floats(0, 1), min_size=len(inner), max_size=len(inner))), reverse=True)
        weights[rate] = (1.0, *middle, 0.0)
    return DialCalibration(knots, weights)


train_configs = st.builds(
    TrainConfig,
    steps=st.integers(1, 10**6),
    batch_size=st.integers(1, 64),
    lr=positive,
    schedule=st.sampled_from(["constant", "cosine"]),
    ema_decay=st.floats(0, 0.999),
    seed=st.integers(0, 2**32),
    device=st.sampled_from(["auto", "cpu", "cuda:1"]),
)
fusion_trainings = st.builds(
    FusionTraining,
    base_identity,
    fusions().map(lambda f: f.document()),
    schedules,
    positive,
    positive,
    st.floats(0, 1),
    st.none() | st.builds(lambda folder: {"folder": folder, "weights": "00ff"}, names),
)
records = st.one_of(
    schedules,
    dials(),
    train_configs,
    st.builds(AuxEncoderConfig, base_identity, positive, positive),
    fusion_trainings,
    st.builds(RunConfig, train_configs, fusion_trainings.map(lambda r: r.document())),
    st.builds(
        FusionManifest,
        fusions().map(lambda f: f.document()),
        schedules,
        base_identity,
        st.none() | dials(),
        st.none() | st.integers(0, 10**6),
    ),  # fmt: skip
    st.builds(ReleaseManifest, names, st.floats(0, 5), st.none() | st.integers(0, 10**6), st.none() | names),
)


def _saved_and_loaded(part: Configurable) -> Configurable:
    with tempfile.TemporaryDirectory() as folder:
        return type(part).load_config(part.save_config(Path(folder) / "part.json"))


@RECORDS
@given(records)
def test_every_record_kind_round_trips_to_an_equal_object(record) -> None:
    loaded = _saved_and_loaded(record)
    assert loaded == record and loaded.document() == record.document()
    assert loaded.document()["kind"] == record.config_kind and KINDS[record.config_kind] is type(record)


@MODULES
@given(st.one_of(gains, adapters(), fusions()))
def test_every_module_kind_round_trips_with_its_state(module) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        save_weights(folder, "m.safetensors", "m.json", module.state_dict(), module)
        loaded = type(module).load_config(folder / "m.json")
        loaded.load_state_dict(load_file(str(folder / "m.safetensors")))
    assert loaded.document() == module.document()
    reference = module.state_dict()
    assert loaded.state_dict().keys() == reference.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_attaching_an_adapter_changes_the_recorded_config() -> None:
    fusion = LatentFusion(4, channels=4, units=1, heads=2)
    assert fusion.config["adapter"] is None
    config = fusion.config
    config["channels"] = 99  # a copy: hand-editing it changes nothing
    assert fusion.config["channels"] == 4
    adapter = SynthesisAdapter([1], [3], 2)
    fusion.attach_adapter(adapter)
    assert fusion.config["adapter"] == adapter.document()
    assert LatentFusion.from_document(fusion.document()).adapter.config == adapter.config


def test_the_committed_default_weights_are_schema_1_and_still_load() -> None:
    """Shipped before the kinds existed: read through each kind's legacy shape, to the same model."""
    folder = loading.DEFAULT_DIR
    for name in ("config.json", "codec.json", "fusion.json"):
        assert "kind" not in json.loads((folder / name).read_text()), name
    release = ReleaseManifest.load_config(folder / "config.json")
    assert release.weights == "codec.safetensors" and release.default_rate == 3.0
    codec = GainMeanScaleHyperprior.load_config(folder / "codec.json")
    assert codec.config == {"N": 96, "M": 144, "lambdas": [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]}
    manifest = FusionManifest.load_config(folder / "fusion.json")
    assert manifest.base["fingerprint"] == release.fingerprint == loading.load_codec().fingerprint.hex()
    assert manifest.fusion["config"]["adapter"]["config"]["hidden"] == 128 and manifest.dial is not None
    assert _saved_and_loaded(manifest) == manifest  # rewritten in schema 2, it reads back the same


def test_the_committed_base_run_is_schema_1_and_still_loads() -> None:
    """The resumable base checkpoint's run folder: its config.json and the checkpoint's stage name the same codec."""
    folder = Path(__file__).resolve().parents[1] / "checkpoints" / "base"
    run = RunConfig.load_config(folder / "config.json")
    assert run.train.steps == 71385 and run.train.critic_lr_scale == 1.0  # an option added since: its default
    shipped = GainMeanScaleHyperprior.load_config(loading.DEFAULT_DIR / "codec.json").config
    assert GainMeanScaleHyperprior.read_config(run.stage) == shipped


def test_schema_1_run_files_still_load(tmp_path) -> None:
    """The shapes a run folder held before: aux.json and config.json as stage descriptions."""
    fusion = LatentFusion(4, channels=4, units=1, heads=2, adapter={"positions": [1], "widths": [3], "hidden": 2})
    legacy_fusion = {**fusion.config, "adapter": {"positions": [1], "widths": [3], "hidden": 2}}
    base = {"codec": "gain-hyperprior", "fingerprint": "0123456789abcdef"}
    stage = {"stage": "fusion", "base": base, "fusion": legacy_fusion,
             "schedule": {"num_train_steps": 50, "beta_start": 1e-4, "beta_end": 0.02},
             "latent_weight": 0.1, "image_mse_weight": 0.0}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps({"train": {"steps": 3}, "stage": stage}))
    run = RunConfig.load_config(tmp_path / "config.json")
    assert run.train == TrainConfig(steps=3)
    training = FusionTraining.from_document(run.stage)
    assert training.fusion == fusion.document() and training.schedule == NoiseSchedule(50)
    assert training.adversarial_weight == 0.0 and training.init is None
    (tmp_path / "aux.json").write_text(
        json.dumps({"stage": "aux", "base": base, "rate_weight": 0.0, "mse_weight": 30.0})
    )
    assert AuxEncoderConfig.load_config(tmp_path / "aux.json") == AuxEncoderConfig(base, 0.0, 30.0)
    base_stage = {"stage": "base", "architecture": "gain-mean-scale-hyperprior", "N": 4, "M": 6, "lambdas": [0.01]}
    assert GainMeanScaleHyperprior.from_document(base_stage).config == {"N": 4, "M": 6, "lambdas": [0.01]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"kind": "dpfusion.frobnicator", "schema": 2, "config": {}}, "unknown config kind, 'dpfusion.frobnicator'"),
        ({"kind": "dpfusion.noise-schedule", "schema": 3, "config": {}}, "schema 3 is newer than this dpfusion reads"),
        ({"kind": "dpfusion.noise-schedule", "schema": "2", "config": {}}, "not a schema this dpfusion reads"),
        ({"kind": "dpfusion.dial", "schema": 2, "config": {}}, "a 'dpfusion.dial', not a dpfusion.noise-schedule"),
        ({"kind": "dpfusion.noise-schedule", "schema": 2}, "has no config object"),
        ({"kind": "dpfusion.noise-schedule", "schema": 2, "config": {"steps": 3}}, "not a valid dpfusion.noise"),
        ([], "a JSON object was expected"),
    ],
)
def test_bad_documents_are_one_line_errors(tmp_path, document, message) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(document))
    with pytest.raises(DPFusionError, match=message) as info:
        NoiseSchedule.load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_newer_fusion_module_is_refused_by_the_loader(tmp_path, tiny_gain_codec) -> None:
    save_fusion(tmp_path, LatentFusion(tiny_gain_codec.latent_channels, 4, 1, 2), NoiseSchedule(10), tiny_gain_codec)
    document = json.loads((tmp_path / CONFIG_NAME).read_text())
    (tmp_path / CONFIG_NAME).write_text(json.dumps({**document, "schema": 9}))
    with pytest.raises(DPFusionError, match="dpfusion.fusion-module schema 9 is newer") as info:
        load_fusion(tmp_path, tiny_gain_codec)
    assert "\n" not in str(info.value)


def test_committed_eval_journals_keep_their_keys() -> None:
    """The sweep's signature hashes the schedule and dial configs: the default model's must be the committed one."""
    from dpfusion.api import load
    from dpfusion.eval.sweep import model_signature

    results = Path(__file__).resolve().parents[1] / "results" / "default"

    def signatures(name: str) -> set[str]:
        lines = (results / f"{name}.journal.jsonl").read_text().splitlines()
        return {json.loads(json.loads(line)["key"])[-1] for line in lines if line.strip()}

    plain = load(precision="fp32", image_dial=False)  # eval decodes in float32
    assert model_signature(plain, (0.0, 0.5, 1.0)) in signatures("sweep")
    assert model_signature(load(precision="fp32"), (0.0, 0.5, 1.0)) in signatures("image_dial")  # the default
