"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dpfusion.api import Model, check_seed, load
from dpfusion.bitstream import DpfFile
from dpfusion.codecs.loading import DEFAULT_NAME
from dpfusion.codecs.registry import codec_names
from dpfusion.container import parse_for_decoding
from dpfusion.devices import DEVICE_CHOICES, resolve_device
from dpfusion.errors import DPFusionError
from dpfusion.fusion.dial import DEFAULT_TAU_MODE, TAU_MODES
from dpfusion.fusion.samplers import SAMPLERS
from dpfusion.fusion.synthesis_adapter import PRECISIONS


def read_bytes(path: str) -> bytes:
    source = Path(path)
    if not source.is_file():
        raise DPFusionError(f"file not found: {source}")
    try:
        return source.read_bytes()
    except OSError as exc:
        raise DPFusionError(f"cannot read {source}: {exc.strerror or exc}") from None


def unit_float(name: str) -> Callable[[str], float]:
    """argparse type for a number in [0, 1], with an error that names the option."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {value}")
        return value

    return parse


def seed(text: str) -> int:
    """argparse type for a noise seed: an integer in [0, 2**63 - 1] (``api.check_seed``)."""
    try:
        return check_seed(int(text))
    except (ValueError, DPFusionError):
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63 - 1], got {text!r}") from None


def open_for_decoding(args: argparse.Namespace) -> tuple[bytes, DpfFile, Model]:
    """Read and parse ``args.input`` and load the model it names (``--checkpoint``, ``--fusion``)."""
    data = read_bytes(args.input)
    file = parse_for_decoding(data)
    if args.steps < 1:
        raise DPFusionError(f"--steps must be >= 1, got {args.steps}")
    device = resolve_device(args.device)
    model = load(file.codec, file.quality, args.checkpoint, args.fusion, args.tau_mode, device, args.sampler,
                 precision=args.precision)  # fmt: skip
    model = model.compile() if args.compile else model
    return data, file, model


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: where ``g_s`` and the fusion module run; entropy coding stays on the CPU."""
    parser.add_argument(
        "--device",
        default="cpu",
        choices=DEVICE_CHOICES,
        help="cpu (default), cuda, or auto (cuda when available); the bitstream is the same on every device",
    )


def add_model(parser: argparse.ArgumentParser, help: str = "base codec") -> None:
    """``--model``: one of the registered codecs (``dpfusion.codecs.registry``) or an alias."""
    parser.add_argument("--model", default=DEFAULT_NAME, choices=codec_names(with_aliases=True), help=help)


def add_tau_mode(parser: argparse.ArgumentParser) -> None:
    """``--tau-mode``: what a tau between 0 and 1 renders (see ``dpfusion.fusion.dial``)."""
    parser.add_argument(
        "--tau-mode",
        dest="tau_mode",
        choices=TAU_MODES,
        default=DEFAULT_TAU_MODE,
        help="dial: the calibrated blend of the tau = 1 and tau = 0 images (default); linear: the plain blend;"
        " paper: eq. 4's latent fusion at that tau",
    )


def add_image_dial(parser: argparse.ArgumentParser) -> None:
    """``--image-dial`` (default) / ``--no-image-dial``: whether the sender fits the dial to each image."""
    parser.add_argument(
        "--image-dial",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit the dial to each image when encoding, so that equal steps in tau are equal LPIPS steps on this"
        " image (12 bytes; needs `dpfusion weights prepare`; about 9x a plain encode on 2 CPU threads; default);"
        " --no-image-dial: a plain encode, decoded with the module's calibration",
    )


def add_sampler(parser: argparse.ArgumentParser) -> None:
    """``--sampler``: a registered sampler (``dpfusion.fusion.samplers``); the registry, not this list, says which."""
    parser.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        help="how the fusion module samples (default: the sampler it was trained for; ddim is eq. 4, "
        "x0 one clean-latent prediction, direct the paper's Variant 1)",
    )


def add_precision(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--precision``: how the synthesis adapter's blocks compute (``Model.precision``)."""
    parser.add_argument(
        "--precision",
        default=default,
        choices=PRECISIONS,
        help=f"the adapter's blocks (tau < 1) in fp32, bf16 (several times faster on CPUs with AMX and on GPUs,"
        f" within noise of fp32: docs/METHOD.md) or auto, bf16 where the device has it natively (default: {default});"
        " tau = 1 is float32 and bit-exact either way",
    )


def add_compile(parser: argparse.ArgumentParser) -> None:
    """``--compile``: torch.compile the adapted ``g_s`` (``dpfusion.fusion.compiled``); off by default."""
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile g_s with the adapter's blocks (tau < 1): about a minute per image size, then faster"
        " decodes; falls back to eager where unavailable",
    )
