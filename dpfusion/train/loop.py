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
from dpfusion.errors import DPFusionError
from dpfusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from dpfusion.train.data import CropSampler


@dataclass
class TrainConfig:
    """Every knob of a run; saved in the checkpoint and in ``config.json`` beside it."""

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
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
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

    def describe(self) -> dict[str, Any]:
        """Plain-JSON description of the stage (model sizes, base codec), stored with weights."""
        return {}


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
    return torch.optim.AdamW(stage.critic.parameters(), lr=config.lr)


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
    out_dir = Path(out_dir)
    rank, world = _rank_and_world()
    if config.threads:
        torch.set_num_threads(config.threads)
    ckpt_path = out_dir / CHECKPOINT_NAME
    torch.manual_seed(config.seed + rank)
    generator = torch.Generator().manual_seed(config.seed + rank)

    device = resolve_device(config.device, rank)
    stage.to(device)
    if world > 1:
        model: nn.Module = DistributedDataParallel(stage, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        model = stage
    optimizer = torch.optim.AdamW(stage.param_groups(config), lr=config.lr)
    critic_optimizer = _critic_optimizer(stage, config, world)
    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(stage.trainable, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))

    step = 0
    if resume and rank == 0:
        remove_stale_temps(out_dir)  # what a kill -9 during a write left: never renamed, never read
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state.get("world_size", 1) != world:
            raise DPFusionError(
                f"{ckpt_path} was written by {state.get('world_size')} process(es); resume with as many"
            )
        stage.trainable.load_state_dict(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])  # moves the moments to the parameters' device
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        if critic_optimizer is not None and "critic" in state:
            stage.critic.load_state_dict(state["critic"])
            critic_optimizer.load_state_dict(state["critic_optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["rng"][rank]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"][rank]:
            torch.cuda.set_rng_state(state["rng"][rank]["cuda"], device)
        generator.set_state(state["rng"][rank]["crops"])
    elif not resume and ckpt_path.exists():
        raise DPFusionError(f"{ckpt_path} exists: pass --resume to continue it, or pick another output folder")

    is_main = rank == 0
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / "config.json") as tmp:
            tmp.write_text(json.dumps({"train": dataclasses.asdict(config), "stage": stage.describe()}, indent=2))
    log = _CsvLog(out_dir / "log.csv", step) if is_main else None
    board = _tensorboard(out_dir) if is_main else None

    def checkpoint() -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "crops": generator.get_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        gathered = [rng] * world
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rng)
        state = {
            "step": step,
            "world_size": world,
            "trainable": stage.trainable.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": gathered,
            "stage": json.dumps(stage.describe()),
        }
        if ema is not None:
            state["ema"] = ema.state_dict()
        if critic_optimizer is not None:
            state["critic"] = stage.critic.state_dict()
            state["critic_optimizer"] = critic_optimizer.state_dict()
        if is_main:
            save_checkpoint(ckpt_path, state)
        return state

    bar = tqdm(total=config.steps, initial=step, disable=not (progress and is_main), dynamic_ncols=True)
    model.train()
    started, started_step = time.perf_counter(), step
    state: dict[str, Any] = {}
    while step < config.steps:
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        batch = sampler.sample(config.batch_size, generator).to(device, non_blocking=True)
        loss, logs = model(batch)
        if not torch.isfinite(loss):
            raise DPFusionError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            for group in optimizer.param_groups:
                nn.utils.clip_grad_norm_(group["params"], config.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update_parameters(stage.trainable)
        if critic_optimizer is not None:
            logs = {**logs, **_critic_step(stage, critic_optimizer, lr)}
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            speed = (time.perf_counter() - started) / max(1, step - started_step)
            row = {"step": step, "loss": float(loss.detach()), "lr": lr, "s_per_step": speed}
            row.update({key: float(value) for key, value in logs.items()})
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}", s_step=f"{speed:.2f}")
            if log is not None:
                log.write(row)
            if board is not None:
                for key, value in row.items():
                    if key != "step":
                        board.add_scalar(key, value, step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            state = checkpoint()
    bar.close()
    if board is not None:
        board.close()
    return state or checkpoint()
