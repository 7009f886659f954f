"""``dpfusion train base|aux|fusion DATA_DIR -o OUT``: the three training stages.

Options come from a JSON config file (``--config``) and are overridden by flags.
Under ``torchrun`` each process joins the process group (NCCL on GPUs, gloo on
CPUs) and rank 0 writes checkpoints and the exported weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dpfusion.codecs.adapter import CodecAdapter, state_digest
from dpfusion.codecs.gain_hyperprior import DEFAULT_LAMBDAS, GainMeanScaleHyperprior
from dpfusion.codecs.loading import load_codec
from dpfusion.commands.common import add_model, seed
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion, save_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.losses import PERCEPTUAL_LOSSES, build_perceptual_loss
from dpfusion.train.aux_stage import MSE_WEIGHT, RATE_WEIGHT, AuxEncoderStage
from dpfusion.train.base_stage import BaseCodecStage
from dpfusion.train.data import CropSampler
from dpfusion.train.export import (
    AUX_CONFIG,
    AUX_WEIGHTS,
    CODEC_CONFIG,
    CODEC_WEIGHTS,
    final_weights,
    load_aux_encoder,
)
from dpfusion.train.fusion_stage import LATENT_WEIGHT, FusionStage, measure_latent_scale
from dpfusion.train.loop import TrainConfig, run_training
from dpfusion.weights_io import save_weights

STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "base": {"lr": 1e-4, "batch_size": 8, "crop": 128},
    "aux": {},
    "fusion": {},
}
"""Paper defaults (AdamW, lr 5e-5, batch 32, 256 crops) apply to aux and fusion; the base codec is ours."""


def _train_config(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = dict(STAGE_DEFAULTS[args.stage])
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise DPFusionError(f"config file not found: {path}")
        try:
            values.update(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise DPFusionError(f"{path}: invalid JSON ({exc})") from None
    for field in dataclasses.fields(TrainConfig):
        flag = getattr(args, field.name, None)
        if flag is not None:
            values[field.name] = flag
    return TrainConfig.from_dict(values)


def _init_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _base_codec(args: argparse.Namespace) -> CodecAdapter:
    return load_codec(args.model, args.quality, args.codec_checkpoint)


def _run_base(args: argparse.Namespace, config: TrainConfig, sampler: CropSampler, out: Path) -> None:
    codec = GainMeanScaleHyperprior(N=args.N, M=args.M, lambdas=args.lambdas)
    state = run_training(BaseCodecStage(codec), sampler, config, out, resume=args.resume)
    if _is_main():
        description = {"N": args.N, "M": args.M, "lambdas": list(args.lambdas)}
        codec.load_state_dict(final_weights(state))
        codec.update(force=True)
        save_weights(out, CODEC_WEIGHTS, CODEC_CONFIG, codec.state_dict(), description)


def _run_aux(args: argparse.Namespace, config: TrainConfig, sampler: CropSampler, out: Path) -> None:
    codec = _base_codec(args)
    stage = AuxEncoderStage(codec, build_perceptual_loss(args.loss), args.rate_weight, args.mse_weight)
    state = run_training(stage, sampler, config, out, resume=args.resume)
    if _is_main():
        save_weights(out, AUX_WEIGHTS, AUX_CONFIG, final_weights(state), stage.describe())


def _initial_fusion(folder: str, codec: CodecAdapter, variant: str) -> tuple[LatentFusion, NoiseSchedule]:
    """A trained module to fine-tune: it brings its size, latent scale and schedule, so training goes on from there.

    It may come from other weights of the same codec (an earlier snapshot of a base still in
    training): adapting it costs far fewer steps than training a module from scratch.
    """
    fusion, schedule = load_fusion(folder, codec, any_base=True)
    if fusion.config["sampling"] != variant:
        raise DPFusionError(f"--init {folder} is a {fusion.config['sampling']!r} module, not {variant!r}")
    return fusion.train(), schedule


def _add_adapter(fusion: LatentFusion, codec: CodecAdapter, hidden: int) -> None:
    """Attach new synthesis-adapter blocks; an (``--init``) module's blocks are kept, or widened to ``hidden``."""
    if hidden < 0:
        raise DPFusionError(f"--adapter must be 0 (none) or a positive width, got {hidden}")
    if fusion.adapter is not None:
        if hidden not in (0, fusion.adapter.config["hidden"]):
            fusion.attach_adapter(fusion.adapter.widened(hidden))
        return
    if hidden:
        fusion.attach_adapter(SynthesisAdapter.for_synthesis(codec.model.g_s, codec.latent_channels, hidden))


def _run_fusion(args: argparse.Namespace, config: TrainConfig, sampler: CropSampler, out: Path) -> None:
    codec = _base_codec(args)
    if args.variant == "direct" and args.aux:
        raise DPFusionError("the direct variant (paper's Variant-1) trains without --aux")
    if args.variant != "direct" and not args.aux and args.latent_weight != 0:
        raise DPFusionError(
            "fusion training needs --aux (the folder written by `dpfusion train aux`), or --latent-weight 0"
        )
    aux = load_aux_encoder(args.aux, codec) if args.aux else None
    init = None
    if args.init:
        fusion, schedule = _initial_fusion(args.init, codec, args.variant)
        init = {"folder": str(args.init), "weights": state_digest(fusion).hex()[:16]}
    else:
        fusion = LatentFusion(codec.latent_channels, args.channels, args.units, args.heads, sampling=args.variant)
        schedule = NoiseSchedule(num_train_steps=args.T)
        probe = torch.Generator().manual_seed(config.seed)
        fusion.latent_scale.copy_(measure_latent_scale(codec, [sampler.sample(8, probe) for _ in range(4)]))
    _add_adapter(fusion, codec, args.adapter)
    stage = FusionStage(
        codec,
        aux,
        fusion,
        schedule,
        build_perceptual_loss(args.loss),
        args.latent_weight,
        init,
        args.image_mse_weight,
        args.adversarial_weight,
    )
    state = run_training(stage, sampler, config, out, resume=args.resume)
    if _is_main():
        fusion.load_state_dict(final_weights(state))
        save_fusion(out, fusion.cpu(), schedule, codec)


RUNNERS = {"base": _run_base, "aux": _run_aux, "fusion": _run_fusion}


def run(args: argparse.Namespace) -> None:
    _init_distributed()
    config = _train_config(args)
    sampler = CropSampler(args.data, config.crop)
    out = Path(args.output)
    torch.manual_seed(config.seed)  # the initial weights and the latent-scale probe follow --seed too
    RUNNERS[args.stage](args, config, sampler, out)
    if _is_main():
        print(f"{args.stage} training done: {out}")
    if dist.is_initialized():
        dist.destroy_process_group()


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="folder of training images (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoint, log.csv, exported weights")
    p.add_argument("--config", help="JSON file of training options (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --output exactly")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--warmup-steps", dest="warmup_steps", type=int)
    p.add_argument("--schedule", choices=("constant", "cosine"))
    p.add_argument("--grad-clip", dest="grad_clip", type=float)
    p.add_argument("--ema-decay", dest="ema_decay", type=float, help="0 disables the weight EMA")
    p.add_argument(
        "--critic-lr-scale",
        dest="critic_lr_scale",
        type=float,
        help="the critic's learning rate over the module's (adversarial runs; two time-scale update rule)",
    )
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    p.add_argument("--log-every", dest="log_every", type=int)
    p.add_argument("--seed", type=seed)
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")


def _add_codec(p: argparse.ArgumentParser) -> None:
    add_model(p, "frozen base codec")
    p.add_argument("--quality", type=float, help="zoo quality, or the rate index the codec is loaded at")
    p.add_argument("--codec-checkpoint", dest="codec_checkpoint", help="local weights of the base codec")
    p.add_argument("--loss", default="lpips_alex", choices=PERCEPTUAL_LOSSES, help="perceptual loss")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train the base codec, the auxiliary encoder or the fusion module")
    stages = parser.add_subparsers(dest="stage", required=True)

    p = stages.add_parser("base", help="variable-rate gain hyperprior (rate-distortion)")
    _add_common(p)
    p.add_argument("--N", type=int, default=96)
    p.add_argument("--M", type=int, default=144)
    p.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS))

    p = stages.add_parser("aux", help="stage 1: auxiliary encoder g_a' for a frozen codec")
    _add_common(p)
    _add_codec(p)
    p.add_argument(
        "--rate-weight", dest="rate_weight", type=float, default=RATE_WEIGHT, help="weight of the aux latent's bpp"
    )
    p.add_argument("--mse-weight", dest="mse_weight", type=float, default=MSE_WEIGHT, help="weight of the image MSE")

    _add_fusion(stages.add_parser("fusion", help="stage 2: the latent fusion module (eq. 2)"))
    parser.set_defaults(run=run)


def _add_fusion(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    _add_codec(p)
    p.add_argument("--aux", help="folder of the trained auxiliary encoder")
    p.add_argument(
        "--init",
        help="fine-tune this trained fusion module, also one trained for other weights of the codec (its size,"
        " latent scale and schedule replace --channels/--units/--heads/--T); the optimizer starts fresh",
    )
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--units", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--T", type=int, default=1000, help="diffusion training steps")
    p.add_argument(
        "--latent-weight",
        dest="latent_weight",
        type=float,
        default=LATENT_WEIGHT,
        help=f"eq. 2's lambda, the pull towards the auxiliary latent (default {LATENT_WEIGHT})",
    )
    p.add_argument(
        "--adapter",
        type=int,
        default=0,
        help="width of residual blocks inside g_s, faded in as tau falls (beyond the paper; 0: none, the paper's"
        " fixed g_s); with --init, a larger width grows the module's blocks without changing their output",
    )
    p.add_argument(
        "--image-mse-weight",
        dest="image_mse_weight",
        type=float,
        default=0.0,
        help="weight of the image MSE in the loss (keeps the PSNR cost of an adapter in check)",
    )
    p.add_argument(
        "--adversarial-weight",
        dest="adversarial_weight",
        type=float,
        default=0.0,
        help="weight of a conditional patch critic's GAN loss on the tau = 0 image (beyond the paper; 0: none)",
    )
    p.add_argument(
        "--variant",
        choices=("ddim", "direct"),
        default="ddim",
        help="ddim: the method; direct: the paper's Variant-1 ablation (no diffusion, no auxiliary encoder)",
    )
