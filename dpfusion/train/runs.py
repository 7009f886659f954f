"""The three training runs as library calls: build the stage, train it, export what it trained.

``dpfusion train base|aux|fusion`` parses its flags into these arguments; a script or a notebook
calls the same functions. Under ``torchrun`` every process calls them inside ``distributed()``;
rank 0 writes the checkpoints and the exported weights.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dpfusion.codecs.adapter import CodecAdapter, state_digest
from dpfusion.codecs.gain_hyperprior import DEFAULT_LAMBDAS, GainMeanScaleHyperprior
from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.errors import DPFusionError
from dpfusion.fusion.adapter_pruning import narrowed
from dpfusion.fusion.checkpoint import load_fusion, save_fusion
from dpfusion.fusion.decoding import fuse_latents
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.samplers import sampler_for
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.losses import build_perceptual_loss
from dpfusion.train.aux_stage import MSE_WEIGHT, RATE_WEIGHT, AuxEncoderStage, sample_rates
from dpfusion.train.base_stage import BaseCodecStage
from dpfusion.train.data import CropSampler
from dpfusion.train.export import AUX_CONFIG, AUX_WEIGHTS, CODEC_CONFIG, CODEC_WEIGHTS, final_weights, load_aux_encoder
from dpfusion.train.fusion_stage import LATENT_WEIGHT, FusionStage, measure_latent_scale
from dpfusion.train.loop import RunConfig, TrainConfig, run_training
from dpfusion.weights_io import read_json_object, save_weights

STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "base": {"lr": 1e-4, "batch_size": 8, "crop": 128},
    "aux": {},
    "fusion": {},
}
"""Paper defaults (AdamW, lr 5e-5, batch 32, 256 crops) apply to aux and fusion; the base codec is ours."""

LATENT_SCALE_PROBE = (4, 8)
"""Batches x crops whose latents measure a new fusion module's per-channel scale."""


def _file_options(path: Path) -> dict[str, Any]:
    """Options from a JSON file: bare, a ``dpfusion.train`` document, or a run's ``config.json`` (its options)."""
    data = read_json_object(path, "config file")
    if data.get("kind") == RunConfig.config_kind or ("kind" not in data and "train" in data):
        return RunConfig.from_document(data, str(path)).train.config
    return TrainConfig.read_config(data, str(path))


def train_config(stage: str, file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The stage's defaults, then a JSON file of options (see ``_file_options``), then the overrides that are set."""
    values: dict[str, Any] = dict(STAGE_DEFAULTS[stage])
    if file is not None:
        values.update(_file_options(Path(file)))
    values.update({name: value for name, value in (overrides or {}).items() if value is not None})
    return TrainConfig.from_config(values)


@contextlib.contextmanager
def distributed() -> Iterator[None]:
    """Join the process group under ``torchrun`` (NCCL on GPUs, gloo on CPUs); leave it afterwards."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


@dataclass(frozen=True)
class CodecChoice:
    """The frozen base codec of an aux or fusion run, by name (``--model``, ``--quality``, ``--codec-checkpoint``)."""

    model: str = DEFAULT_NAME
    quality: float | None = None
    checkpoint: str | Path | None = None

    def load(self) -> CodecAdapter:
        return load_codec(self.model, self.quality, self.checkpoint)


def _start(data: str | Path, config: TrainConfig) -> CropSampler:
    torch.manual_seed(config.seed)  # the initial weights and the latent-scale probe follow the seed too
    return CropSampler(data, config.crop)


def _codec(codec: CodecAdapter | CodecChoice) -> CodecAdapter:
    """A choice is loaded after the seed is set: building the model draws random numbers."""
    return codec.load() if isinstance(codec, CodecChoice) else codec


def train_base(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    N: int = 96,
    M: int = 144,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    resume: bool = False,
) -> Path:
    """Rate-distortion training of a gain hyperprior; exports ``codec.safetensors`` + ``codec.json``."""
    sampler, out = _start(data, config), Path(out)
    codec = GainMeanScaleHyperprior(N=N, M=M, lambdas=lambdas)
    state = run_training(BaseCodecStage(codec), sampler, config, out, resume=resume)
    if is_main():
        codec.load_state_dict(final_weights(state))
        codec.update(force=True)
        save_weights(out, CODEC_WEIGHTS, CODEC_CONFIG, codec.state_dict(), codec)
    return out / CODEC_WEIGHTS


def train_aux(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    codec: CodecAdapter | CodecChoice,
    loss: str = "lpips_alex",
    rate_weight: float = RATE_WEIGHT,
    mse_weight: float = MSE_WEIGHT,
    resume: bool = False,
) -> Path:
    """Stage 1, the auxiliary encoder for a frozen codec; exports ``aux.safetensors`` + ``aux.json``."""
    sampler, out = _start(data, config), Path(out)
    stage = AuxEncoderStage(_codec(codec), build_perceptual_loss(loss), rate_weight, mse_weight)
    state = run_training(stage, sampler, config, out, resume=resume)
    if is_main():
        save_weights(out, AUX_WEIGHTS, AUX_CONFIG, final_weights(state), stage.stage_config())
    return out / AUX_WEIGHTS


@dataclass(frozen=True)
class FusionOptions:
    """Stage 2's choices beyond the training loop's (``dpfusion train fusion``'s flags)."""

    aux: str | Path | None = None
    """Folder of the trained auxiliary encoder (eq. 2's target); none for ``direct`` or a zero latent weight."""
    init: str | Path | None = None
    """A trained module to fine-tune: its size, latent scale and schedule replace the four below."""
    channels: int = 64
    units: int = 2
    heads: int = 4
    num_train_steps: int = 1000
    latent_weight: float = LATENT_WEIGHT
    adapter: int = 0
    """Width of blocks inside ``g_s`` (beyond the paper; 0: none); with ``init``, a larger width grows them."""
    image_mse_weight: float = 0.0
    adversarial_weight: float = 0.0
    texture_weight: float = 0.0
    variant: str = "ddim"
    loss: str = "lpips_alex"

    def check(self) -> None:
        if self.variant == "direct" and self.aux:
            raise DPFusionError("the direct variant (paper's Variant-1) trains without --aux")
        if self.variant != "direct" and not self.aux and self.latent_weight != 0:
            raise DPFusionError(
                "fusion training needs --aux (the folder written by `dpfusion train aux`), or --latent-weight 0"
            )


def initial_fusion(folder: str | Path, codec: CodecAdapter, variant: str) -> tuple[LatentFusion, NoiseSchedule]:
    """A trained module to fine-tune: it brings its size, latent scale and schedule, so training goes on from there.

    It may come from other weights of the same codec (an earlier snapshot of a base still in
    training): adapting it costs far fewer steps than training a module from scratch.
    """
    fusion, schedule = load_fusion(folder, codec, any_base=True)
    if fusion.sampling != variant:
        raise DPFusionError(f"--init {folder} is a {fusion.sampling!r} module, not {variant!r}")
    return fusion.train(), schedule


def new_fusion(codec: CodecAdapter, sampler: CropSampler, options: FusionOptions, seed: int) -> LatentFusion:
    """An untrained module whose latent scale is measured on training crops drawn with ``seed``."""
    fusion = LatentFusion(codec.latent_channels, options.channels, options.units, options.heads, options.variant)
    probe = torch.Generator().manual_seed(seed)
    batches, crops = LATENT_SCALE_PROBE
    fusion.latent_scale.copy_(measure_latent_scale(codec, [sampler.sample(crops, probe) for _ in range(batches)]))
    return fusion


def add_adapter(
    fusion: LatentFusion, codec: CodecAdapter, hidden: int, probe: Callable[[], list[Tensor]] | None = None
) -> str:
    """Attach new synthesis-adapter blocks; an (``--init``) module's blocks are kept, widened or narrowed to
    ``hidden``. Narrowing fits on ``probe()``'s latents; what it did is returned for the run's record."""
    if hidden < 0:
        raise DPFusionError(f"--adapter must be 0 (none) or a positive width, got {hidden}")
    if fusion.adapter is None:
        if hidden:
            fusion.attach_adapter(SynthesisAdapter.for_synthesis(codec.model.g_s, codec.latent_channels, hidden))
        return ""
    old = fusion.adapter.hidden
    if hidden in (0, old):
        return ""
    if hidden > old:
        fusion.attach_adapter(fusion.adapter.widened(hidden))
        return f"widened {old} -> {hidden}"
    if probe is None:
        raise DPFusionError(f"narrowing the adapter from {old} to {hidden} channels needs latents to fit on")
    narrow, fits = narrowed(fusion.adapter, codec.model.g_s, probe(), hidden)
    fusion.attach_adapter(narrow.train())
    return f"narrowed {old} -> {hidden}, refit R^2 " + " / ".join(f"{fit:.3f}" for fit in fits)


@torch.no_grad()
def realistic_latents(
    fusion: LatentFusion, schedule: NoiseSchedule, codec: CodecAdapter, sampler: CropSampler, seed: int
) -> list[Tensor]:
    """Fused tau = 0 latents (one step) of training crops drawn with ``seed``: what the adapter's blocks see."""
    generator = torch.Generator().manual_seed(seed)
    batches, crops = LATENT_SCALE_PROBE
    one_step = sampler_for(fusion, schedule, 1)
    zero = torch.zeros(1, 1, 1, 1)
    latents = []
    fusion.eval()
    for _ in range(batches):
        batch = sampler.sample(crops, generator)
        for y_hat in codec.training_latent(batch, sample_rates(codec, batch)).split(1):
            latents.append(fuse_latents(fusion, y_hat, [zero], one_step, seed))
    fusion.train()
    return latents


def train_fusion(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    codec: CodecAdapter | CodecChoice,
    options: FusionOptions = FusionOptions(),  # noqa: B008  (frozen: one shared default is safe)
    resume: bool = False,
) -> Path:
    """Stage 2, the latent fusion module (eq. 2); exports ``fusion.safetensors`` + ``fusion.json``."""
    options.check()
    sampler, out = _start(data, config), Path(out)
    codec = _codec(codec)
    aux = load_aux_encoder(options.aux, codec) if options.aux else None
    init = None
    if options.init:
        fusion, schedule = initial_fusion(options.init, codec, options.variant)
        init = {"folder": str(options.init), "weights": state_digest(fusion).hex()[:16]}
    else:
        fusion, schedule = new_fusion(codec, sampler, options, config.seed), NoiseSchedule(options.num_train_steps)
    change = add_adapter(
        fusion, codec, options.adapter, lambda: realistic_latents(fusion, schedule, codec, sampler, config.seed)
    )
    if change:
        init = {**(init or {}), "adapter": change}
    perceptual = build_perceptual_loss(options.loss)
    weights = (options.latent_weight, init, options.image_mse_weight, options.adversarial_weight)
    stage = FusionStage(codec, aux, fusion, schedule, perceptual, *weights, texture_weight=options.texture_weight)
    state = run_training(stage, sampler, config, out, resume=resume)
    if is_main():
        fusion.load_state_dict(final_weights(state))
        save_fusion(out, fusion.cpu(), schedule, codec)
    return out / "fusion.safetensors"
