"""``dpfusion train base|aux|fusion DATA_DIR -o OUT``: the three training stages.

Options come from a JSON config file (``--config``) and are overridden by flags.
Under ``torchrun`` each process joins the process group (NCCL on GPUs, gloo on
CPUs) and rank 0 writes checkpoints and the exported weights.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from dpfusion.codecs.gain_hyperprior import DEFAULT_LAMBDAS
from dpfusion.commands.common import add_model, seed
from dpfusion.losses import PERCEPTUAL_LOSSES
from dpfusion.train.aux_stage import MSE_WEIGHT, RATE_WEIGHT
from dpfusion.train.fusion_stage import LATENT_WEIGHT
from dpfusion.train.loop import TrainConfig
from dpfusion.train.runs import (
    CodecChoice,
    FusionOptions,
    distributed,
    is_main,
    train_aux,
    train_base,
    train_config,
    train_fusion,
)


def _codec(args: argparse.Namespace) -> CodecChoice:
    return CodecChoice(args.model, args.quality, args.codec_checkpoint)


def _fusion_options(args: argparse.Namespace) -> FusionOptions:
    names = [field.name for field in dataclasses.fields(FusionOptions) if field.name != "num_train_steps"]
    return FusionOptions(num_train_steps=args.T, **{name: getattr(args, name) for name in names})


def run(args: argparse.Namespace) -> None:
    overrides = {field.name: getattr(args, field.name, None) for field in dataclasses.fields(TrainConfig)}
    with distributed():
        config = train_config(args.stage, args.config, overrides)
        if args.stage == "base":
            train_base(args.data, args.output, config, args.N, args.M, args.lambdas, resume=args.resume)
        elif args.stage == "aux":
            codec = _codec(args)
            train_aux(args.data, args.output, config, codec, args.loss, args.rate_weight, args.mse_weight, args.resume)
        else:
            train_fusion(args.data, args.output, config, _codec(args), _fusion_options(args), resume=args.resume)
        if is_main():
            print(f"{args.stage} training done: {Path(args.output)}")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="folder of training images (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoint, log.csv, exported weights")
    p.add_argument("--config", help="JSON file of training options, or a run's config.json (flags override it)")
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
        " fixed g_s); with --init, a larger width grows the module's blocks without changing their output, a smaller"
        " one prunes them to the channels that carry their output and refits the rest (cheaper decodes)",
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
        "--texture-weight",
        dest="texture_weight",
        type=float,
        default=0.0,
        help="weight of the sliced Wasserstein distance between the VGG16 feature statistics of the tau = 0 image"
        " and the original (a distribution term without a critic; beyond the paper; 0: none)",
    )
    p.add_argument(
        "--variant",
        choices=("ddim", "direct"),
        default="ddim",
        help="ddim: the method; direct: the paper's Variant-1 ablation (no diffusion, no auxiliary encoder)",
    )
