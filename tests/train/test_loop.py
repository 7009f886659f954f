"""The training loop: it learns, it resumes exactly (after a clean stop or a kill), EMA, logs, refusals."""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path
from statistics import mean

import pytest
import torch
from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from dpfusion.train.data import CropSampler
from dpfusion.train.export import final_weights
from dpfusion.train.loop import RunConfig, TrainConfig, TrainingStage, run_training

torch.set_num_threads(1)


class Killed(Exception):
    """Stands in for SIGKILL / Ctrl-C in the middle of a step."""


class RecordingSampler:
    """Wraps a CropSampler: snapshots the trainable weights before each step and can die at a given call."""

    def __init__(self, sampler: CropSampler, stage: TrainingStage | None = None, kill_at: int | None = None):
        self.sampler, self.stage, self.kill_at = sampler, stage, kill_at
        self.calls = 0
        self.snapshots: list[dict[str, Tensor]] = []

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        self.calls += 1
        if self.stage is not None:
            self.snapshots.append(copy.deepcopy(self.stage.trainable.state_dict()))
        if self.calls == self.kill_at:
            raise Killed(f"killed at call {self.calls}")
        return self.sampler.sample(batch_size, generator)


def _log_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_same(a, b, where: str = "") -> None:
    """Recursive exact equality of checkpoint-like structures (tensors compared with torch.equal)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_a_short_run_lowers_the_loss(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    stage = fusion_stage_factory(seed=0)
    config = config_factory(steps=30, lr=3e-3, batch_size=4, checkpoint_every=100)
    state = run_training(stage, crop_sampler, config, tmp_path / "run", progress=False)
    rows = _log_rows(tmp_path / "run")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert {"loss", "lr", "s_per_step", "latent_mse", "perceptual"} <= set(rows[0])
    losses = [float(r["loss"]) for r in rows]
    assert all(math.isfinite(v) for v in losses)
    assert mean(losses[-5:]) < 0.8 * mean(losses[:5]), losses
    assert state["step"] == 30 and (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    written = RunConfig.load_config(tmp_path / "run" / "config.json")
    assert written.train == config and written.stage["kind"] == "dpfusion.fusion-training"


def test_resume_after_a_clean_stop_matches_an_uninterrupted_run(
    fusion_stage_factory, crop_sampler, config_factory, tmp_path
):
    config = config_factory(steps=6, checkpoint_every=3)
    straight = run_training(fusion_stage_factory(), crop_sampler, config, tmp_path / "a", progress=False)

    half = config_factory(steps=3, checkpoint_every=3)
    run_training(fusion_stage_factory(), crop_sampler, half, tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 3
    # A fresh process: new stage objects, the global RNG somewhere else entirely.
    torch.manual_seed(12345)
    resumed = run_training(fusion_stage_factory(), crop_sampler, config, tmp_path / "b", resume=True, progress=False)

    assert resumed["step"] == straight["step"] == 6
    _assert_same(resumed["trainable"], straight["trainable"], "trainable")
    _assert_same(resumed["optimizer"], straight["optimizer"], "optimizer")
    _assert_same(resumed["rng"], straight["rng"], "rng")
    on_disk = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    _assert_same(on_disk["trainable"], load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)["trainable"])
    # The trained weights really moved away from the start.
    assert not torch.equal(straight["trainable"]["out.weight"], fusion_stage_factory().fusion.out.weight)
    assert [int(r["step"]) for r in _log_rows(tmp_path / "b")] == list(range(1, 7))


def test_kill_then_resume_with_cosine_schedule_and_ema(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    config = config_factory(steps=8, checkpoint_every=3, schedule="cosine", warmup_steps=2, ema_decay=0.8)
    straight = run_training(fusion_stage_factory(), crop_sampler, config, tmp_path / "a", progress=False)

    out = tmp_path / "b"
    dying = RecordingSampler(crop_sampler, kill_at=6)  # dies while fetching the batch of step 6
    with pytest.raises(Killed):
        run_training(fusion_stage_factory(), dying, config, out, progress=False)
    _no_temp_files(out)
    on_disk = load_checkpoint(out / CHECKPOINT_NAME)  # complete and loadable: the one from step 3
    assert on_disk["step"] == 3 and on_disk["world_size"] == 1
    assert {"trainable", "optimizer", "rng", "ema", "stage"} <= set(on_disk)
    assert [int(r["step"]) for r in _log_rows(out)] == [1, 2, 3, 4, 5]  # logged before the kill

    with pytest.raises(DPFusionError, match="--resume"):
        run_training(fusion_stage_factory(), crop_sampler, config, out, progress=False)
    resumed = run_training(fusion_stage_factory(), crop_sampler, config, out, resume=True, progress=False)
    _no_temp_files(out)
    _assert_same(resumed["trainable"], straight["trainable"], "trainable")
    _assert_same(resumed["optimizer"], straight["optimizer"], "optimizer")
    _assert_same(resumed["ema"], straight["ema"], "ema")
    rows = _log_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 9))  # steps 4 and 5 not duplicated
    straight_rows = _log_rows(tmp_path / "a")
    for got, expected in zip(rows, straight_rows, strict=True):
        assert got["loss"] == expected["loss"] and got["lr"] == expected["lr"]


def test_exported_weights_are_the_ema(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    stage = fusion_stage_factory()
    recorder = RecordingSampler(crop_sampler, stage)
    decay = 0.7
    state = run_training(stage, recorder, config_factory(steps=5, ema_decay=decay), tmp_path, progress=False)
    exported = final_weights(state)
    raw = state["trainable"]
    assert set(exported) == set(raw)
    assert not torch.equal(exported["out.weight"], raw["out.weight"])
    # EMA written out independently: the first update copies the weights, later ones blend them in.
    after_each_step = recorder.snapshots[1:] + [stage.trainable.state_dict()]
    for name, _ in stage.trainable.named_parameters():
        expected = after_each_step[0][name].clone()
        for weights in after_each_step[1:]:
            expected = decay * expected + (1 - decay) * weights[name]
        torch.testing.assert_close(exported[name], expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(exported["latent_scale"], raw["latent_scale"])  # buffers are not averaged


def test_resume_refuses_another_world_size(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    config = config_factory(steps=2)
    run_training(fusion_stage_factory(), crop_sampler, config, tmp_path, progress=False)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    state["world_size"] = 2
    save_checkpoint(tmp_path / CHECKPOINT_NAME, state)
    with pytest.raises(DPFusionError, match="2 process"):
        run_training(fusion_stage_factory(), crop_sampler, config_factory(steps=4), tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_fresh_and_a_damaged_one_is_refused(
    fusion_stage_factory, crop_sampler, config_factory, tmp_path
):
    state = run_training(fusion_stage_factory(), crop_sampler, config_factory(steps=2), tmp_path, resume=True)
    assert state["step"] == 2
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(DPFusionError, match="not a loadable"):
        run_training(fusion_stage_factory(), crop_sampler, config_factory(steps=4), tmp_path, resume=True)


def test_resume_cleans_the_temp_file_a_kill_left(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    run_training(fusion_stage_factory(), crop_sampler, config_factory(steps=2), tmp_path, progress=False)
    stale = tmp_path / f".{CHECKPOINT_NAME}.x7_q2k9m.tmp"  # what kill -9 in the middle of torch.save leaves
    stale.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_bytes(b"not ours")
    state = run_training(fusion_stage_factory(), crop_sampler, config_factory(steps=3), tmp_path, resume=True)
    assert state["step"] == 3
    assert not stale.exists() and unrelated.exists()


class _NanStage(TrainingStage):
    def __init__(self) -> None:
        super().__init__()
        self.trainable = nn.Linear(1, 1)

    def forward(self, batch: Tensor):
        return self.trainable.weight.sum() * float("nan"), {}


def test_a_non_finite_loss_stops_the_run(crop_sampler, config_factory, tmp_path):
    with pytest.raises(DPFusionError, match="learning rate"):
        run_training(_NanStage(), crop_sampler, config_factory(steps=3), tmp_path, progress=False)


@pytest.mark.parametrize("crop", [32, 100])
def test_crops_are_multiples_of_the_codec_stride(fusion_stage_factory, crop_sampler, config_factory, tmp_path, crop):
    stage = fusion_stage_factory()
    assert stage.stride == stage.codec.stride == 64
    with pytest.raises(DPFusionError, match="crop must be a multiple of 64"):
        run_training(stage, crop_sampler, config_factory(steps=1, crop=crop), tmp_path, progress=False)
    assert not (tmp_path / "config.json").exists()  # refused before anything is written


def test_train_config_validation():
    assert TrainConfig.from_config({"steps": 5, "crop": 128}).steps == 5
    with pytest.raises(DPFusionError, match="bogus, other") as info:
        TrainConfig.from_config({"steps": 5, "other": 1, "bogus": 2})
    assert "\n" not in str(info.value)
    for bad in (
        {"steps": 0},
        {"batch_size": 0},
        {"crop": 0},
        {"lr": 0.0},
        {"schedule": "linear"},
        {"ema_decay": 1.0},
        {"log_every": 0},
        {"steps": "10"},
        {"steps": 2.5},
        {"steps": True},
        {"lr": None},
        {"schedule": 1},
        {"seed": -1},
        {"seed": 2**64},
    ):
        with pytest.raises(DPFusionError):
            TrainConfig.from_config(bad)
    # JSON integers are fine where a float is expected.
    coerced = TrainConfig.from_config({"lr": 1, "ema_decay": 0})
    assert coerced.lr == 1.0 and type(coerced.lr) is float and type(coerced.ema_decay) is float


def test_learning_rate_schedule():
    config = TrainConfig(steps=110, lr=1.0, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert [config.lr_at(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert config.lr_at(10) == pytest.approx(1.0)
    assert config.lr_at(60) == pytest.approx(0.55)
    assert config.lr_at(110) == pytest.approx(0.1)
    assert TrainConfig(lr=0.3).lr_at(1000) == 0.3


def test_crop_sampler(image_folder, tmp_path):
    sampler = CropSampler(image_folder, 64)
    assert len(sampler) == 5  # four images + one in a sub-folder; the 40-pixel one is too small
    a = sampler.sample(3, torch.Generator().manual_seed(1))
    b = sampler.sample(3, torch.Generator().manual_seed(1))
    assert a.shape == (3, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, sampler.sample(3, torch.Generator().manual_seed(2)))
    with pytest.raises(DPFusionError, match="at least"):
        CropSampler(image_folder, 128)
    with pytest.raises(DPFusionError, match="not found"):
        CropSampler(tmp_path / "missing", 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DPFusionError, match="no images"):
        CropSampler(tmp_path / "empty", 64)
