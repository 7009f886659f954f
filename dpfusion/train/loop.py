"""One training loop for every stage: crops in, loss out, checkpoints that resume exactly.

A stage is an ``nn.Module`` whose ``forward(batch)`` returns ``(loss, logs)`` and
whose ``trainable`` attribute is the sub-module the checkpoint stores. A stage with a
``critic`` (a discriminator) is trained as a two-player game: after each step of the
trainable module, the critic takes one step of its own optimizer on ``critic_loss()``;
both are checkpointed, so an adversarial run resumes exactly too. Under
``torchrun`` the stage is wrapped in DistributedDataParallel; each rank draws its
own crops from a generator seeded with ``seed + rank``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from dpfusion.api import check_seed
from dpfusion.atomic import atomic_path, remove_stale_temps
from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError
from dpfusion.train.checkpoint import CHECKPOINT_NAME, RUN_CONFIG_NAME, load_checkpoint, save_checkpoint
from dpfusion.train.data import CropSampler


@dataclass
class TrainConfig(Configurable):
    """Every knob of a run; saved in the run's ``config.json``."""

    config_kind = "dpfusion.train"

    steps: int = 100_000
    batch_size: int = 32
    crop: int = 256
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    critic_lr_scale: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    device: str = "auto"

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> TrainConfig:
        """Checked: a JSON file can hold any key and any type."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DPFusionError(f"unknown training option(s): {', '.join(unknown)}")
        config = cls(**values)
        for field in dataclasses.fields(cls):  # a JSON config can hold any type: check before comparing
            value, default = getattr(config, field.name), field.default
            if isinstance(default, float) and type(value) is int:
                setattr(config, field.name, value := float(value))
            if type(value) is not type(default):
                raise DPFusionError(f"training option {field.name} must be {type(default).__name__}, got {value!r}")
        config.validate()
        return config

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise DPFusionError("steps and batch_size must be >= 1")
        if self.crop < 1:
            raise DPFusionError(f"crop must be positive, got {self.crop}")
        if self.lr <= 0:
            raise DPFusionError(f"learning rate must be positive, got {self.lr}")
        if self.schedule not in ("constant", "cosine"):
            raise DPFusionError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.critic_lr_scale <= 0:
            raise DPFusionError(f"critic_lr_scale must be positive, got {self.critic_lr_scale}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise DPFusionError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise DPFusionError("checkpoint_every and log_every must be >= 1")
        check_seed(self.seed)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps))
        floor = self.lr * self.min_lr_ratio
        return floor + 0.5 * (self.lr - floor) * (1.0 + math.cos(math.pi * progress))


class TrainingStage(nn.Module):
    """Base class of the stages; subclasses set ``self.trainable`` and implement ``forward``."""

    trainable: nn.Module
    stride: int = 1  # the codec's downsampling factor: crops must be whole multiples of it
    critic: nn.Module | None  # set (a module or None) by stages that train a critic; see ``critic_of``

    def critic_loss(self) -> tuple[Tensor, dict[str, Tensor]]:
        """The critic's loss on the batch of the last ``forward``; stages with a critic override it."""
        raise NotImplementedError

    def param_groups(self, config: TrainConfig) -> list[dict[str, Any]]:
        params = [p for p in self.trainable.parameters() if p.requires_grad]
        return [{"params": params, "weight_decay": config.weight_decay}]

    def forward(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def stage_config(self) -> Configurable | None:
        """What the stage trains, as the checkpoint and the run's ``config.json`` record it (None: nothing)."""
        return None


def _stage_document(stage: TrainingStage) -> dict[str, Any] | None:
    config = stage.stage_config()
    return None if config is None else config.document()


@dataclass(frozen=True)
class RunConfig(Configurable):
    """A run folder's ``config.json``: the training options and the stage's document (of its own kind)."""

    config_kind = "dpfusion.train-run"
    config_parts = {"train": TrainConfig}

    train: TrainConfig
    stage: dict[str, Any] | None


def resolve_device(name: str, rank: int) -> torch.device:
    """``auto`` picks this rank's GPU under torchrun when CUDA is present, else the CPU."""
    if name == "auto":
        return (
            torch.device(f"cuda:{rank % torch.cuda.device_count()}")
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    return torch.device(name)


def critic_of(stage: TrainingStage) -> nn.Module | None:
    """The stage's critic; not a class default, which would shadow a registered sub-module."""
    return getattr(stage, "critic", None)


def _critic_optimizer(stage: TrainingStage, config: TrainConfig, world: int) -> torch.optim.Optimizer | None:
    if critic_of(stage) is None:
        return None
    if world > 1:
        raise DPFusionError("adversarial training runs in one process; start it without torchrun")
    # beta1 = 0.5, the GAN convention: momentum tuned for a fixed target lags a moving opponent.
    return torch.optim.AdamW(stage.critic.parameters(), lr=config.lr * config.critic_lr_scale, betas=(0.5, 0.999))


def _critic_step(stage: TrainingStage, optimizer: torch.optim.Optimizer, lr: float) -> dict[str, Tensor]:
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss, logs = stage.critic_loss()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"critic": loss.detach(), **logs}


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _CsvLog:
    """Append-only CSV that forgets rows written after the step a run resumes from."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with path.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            if rows:
                self.fields = list(rows[0])
            with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
                if self.fields:
                    writer = csv.DictWriter(handle, self.fields)
                    writer.writeheader()
                    writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


@dataclass
class _Run:
    """Everything one training process holds: the stage, its optimizers, where it writes, its step and rng."""

    stage: TrainingStage
    config: TrainConfig
    out_dir: Path
    rank: int
    world: int
    device: torch.device
    generator: torch.Generator
    optimizer: torch.optim.Optimizer
    critic_optimizer: torch.optim.Optimizer | None
    ema: AveragedModel | None
    step: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME


def _start(stage: TrainingStage, config: TrainConfig, out_dir: Path) -> _Run:
    """Seed, place the stage and build its optimizers (and EMA)."""
    rank, world = _rank_and_world()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + rank)
    device = resolve_device(config.device, rank)
    stage.to(device)
    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(stage.trainable, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    return _Run(
        stage,
        config,
        out_dir,
        rank,
        world,
        device,
        torch.Generator().manual_seed(config.seed + rank),
        torch.optim.AdamW(stage.param_groups(config), lr=config.lr),
        _critic_optimizer(stage, config, world),
        ema,
    )


def _resume(run: _Run, resume: bool) -> None:
    """Load the run folder's checkpoint into ``run`` (``resume``), or refuse to overwrite one."""
    path = run.checkpoint_path
    if resume and run.is_main:
        remove_stale_temps(run.out_dir)  # what a kill -9 during a write left: never renamed, never read
    if not path.exists():
        return
    if not resume:
        raise DPFusionError(f"{path} exists: pass --resume to continue it, or pick another output folder")
    state = load_checkpoint(path)
    if state.get("world_size", 1) != run.world:
        raise DPFusionError(f"{path} was written by {state.get('world_size')} process(es); resume with as many")
    run.stage.trainable.load_state_dict(state["trainable"])
    run.optimizer.load_state_dict(state["optimizer"])  # moves the moments to the parameters' device
    if run.ema is not None and "ema" in state:
        run.ema.load_state_dict(state["ema"])
    if run.critic_optimizer is not None and "critic" in state:
        run.stage.critic.load_state_dict(state["critic"])
        run.critic_optimizer.load_state_dict(state["critic_optimizer"])
    run.step = int(state["step"])
    rng = state["rng"][run.rank]
    torch.set_rng_state(rng["torch"])
    if run.device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    run.generator.set_state(rng["crops"])


def _gathered_rng(run: _Run) -> list[dict[str, Tensor]]:
    """Every rank's random state, so each resumes its own stream."""
    rng = {"torch": torch.get_rng_state(), "crops": run.generator.get_state()}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    if run.world == 1:
        return [rng]
    gathered: list[Any] = [None] * run.world
    dist.all_gather_object(gathered, rng)
    return gathered


def _checkpoint(run: _Run) -> dict[str, Any]:
    """The resumable state (rank 0 writes it); every rank takes part in gathering the random states."""
    state = {
        "step": run.step,
        "world_size": run.world,
        "trainable": run.stage.trainable.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "rng": _gathered_rng(run),
        "stage": json.dumps(_stage_document(run.stage)),
    }
    if run.ema is not None:
        state["ema"] = run.ema.state_dict()
    if run.critic_optimizer is not None:
        state["critic"] = run.stage.critic.state_dict()
        state["critic_optimizer"] = run.critic_optimizer.state_dict()
    if run.is_main:
        save_checkpoint(run.checkpoint_path, state)
    return state


def _step(run: _Run, model: nn.Module, sampler: CropSampler) -> tuple[float, Tensor, dict[str, Tensor]]:
    """One optimizer step of the trainable module (and one of the critic); returns lr, loss and logs."""
    config, optimizer = run.config, run.optimizer
    lr = config.lr_at(run.step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    batch = sampler.sample(config.batch_size, run.generator).to(run.device, non_blocking=True)
    loss, logs = model(batch)
    if not torch.isfinite(loss):
        raise DPFusionError(f"loss became {loss.item()} at step {run.step}; lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        for group in optimizer.param_groups:
            nn.utils.clip_grad_norm_(group["params"], config.grad_clip)
    optimizer.step()
    if run.ema is not None:
        run.ema.update_parameters(run.stage.trainable)
    if run.critic_optimizer is not None:
        logs = {**logs, **_critic_step(run.stage, run.critic_optimizer, lr * config.critic_lr_scale)}
    run.step += 1
    return lr, loss.detach(), logs


class _Logs:
    """Rank 0's CSV log and TensorBoard; other ranks log nothing."""

    def __init__(self, run: _Run):
        self.csv = _CsvLog(run.out_dir / "log.csv", run.step) if run.is_main else None
        self.board = _tensorboard(run.out_dir) if run.is_main else None

    def write(self, row: dict[str, float]) -> None:
        if self.csv is not None:
            self.csv.write(row)
        if self.board is not None:
            for key, value in row.items():
                if key != "step":
                    self.board.add_scalar(key, value, row["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _write_config(run: _Run) -> None:
    run.out_dir.mkdir(parents=True, exist_ok=True)
    RunConfig(run.config, _stage_document(run.stage)).save_config(run.out_dir / RUN_CONFIG_NAME)


def _wrapped(run: _Run) -> nn.Module:
    """The stage itself, or under torchrun the stage in DistributedDataParallel."""
    if run.world == 1:
        return run.stage
    device_ids = [run.device.index] if run.device.type == "cuda" else None
    return DistributedDataParallel(run.stage, device_ids=device_ids)


def run_training(
    stage: TrainingStage,
    sampler: CropSampler,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train until ``config.steps``; returns the final checkpoint dict (rank 0 writes it)."""
    config.validate()
    if config.crop % stage.stride:
        # The codec's forward pass runs on whole crops: any other size fails inside its hyperprior.
        raise DPFusionError(f"crop must be a multiple of {stage.stride} (the codec's stride), got {config.crop}")
    run = _start(stage, config, Path(out_dir))
    _resume(run, resume)
    if run.is_main:
        _write_config(run)
    logs = _Logs(run)
    model = _wrapped(run)
    bar = tqdm(total=config.steps, initial=run.step, disable=not (progress and run.is_main), dynamic_ncols=True)
    model.train()
    started, started_step = time.perf_counter(), run.step
    state: dict[str, Any] = {}
    while run.step < config.steps:
        lr, loss, step_logs = _step(run, model, sampler)
        bar.update(1)
        last = run.step == config.steps
        if run.step % config.log_every == 0 or last:
            speed = (time.perf_counter() - started) / max(1, run.step - started_step)
            row = {"step": run.step, "loss": float(loss), "lr": lr, "s_per_step": speed}
            logs.write({**row, **{key: float(value) for key, value in step_logs.items()}})
            bar.set_postfix(loss=f"{float(loss):.4g}", s_step=f"{speed:.2f}")
        if run.step % config.checkpoint_every == 0 or last:
            state = _checkpoint(run)
    bar.close()
    logs.close()
    return state or _checkpoint(run)
