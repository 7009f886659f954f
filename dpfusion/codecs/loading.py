"""Base codecs by name: CompressAI zoo architectures, our gain hyperprior, the embedded default.

Official CompressAI weights are read only from the torch hub cache (this project
never downloads at run time); local checkpoints are read with ``weights_only=True``
or from safetensors, so no pickled code is ever executed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from compressai.zoo import image as compressai_zoo
from compressai.zoo.pretrained import load_pretrained
from safetensors.torch import load_file

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file, one_line

ZOO_ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn")
GAIN_ARCHITECTURE = "gain-hyperprior"
DEFAULT_NAME = "dpfusion-default"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "weights" / "default"
CODEC_NAMES = (DEFAULT_NAME, GAIN_ARCHITECTURE, *ZOO_ARCHITECTURES)


def hub_checkpoint_path(architecture: str, quality: int) -> Path:
    """Where ``torch.hub`` caches the official MSE weights of a zoo model."""
    url = compressai_zoo.model_urls[architecture]["mse"][quality]
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DPFusionError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as exc:  # damaged file
            raise DPFusionError(
                f"{path}: not a loadable safetensors file ({type(exc).__name__}: {one_line(exc)})"
            ) from None
    state = load_torch_file(path)
    if isinstance(state, dict):
        for key in ("state_dict", "trainable", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise DPFusionError(f"{path}: does not hold a state dict of tensors")
    return state


def _build_zoo(architecture: str, quality: int, checkpoint: Path | None) -> CodecAdapter:
    qualities = sorted(compressai_zoo.cfgs[architecture])
    if quality not in qualities:
        raise DPFusionError(f"{architecture} has qualities {qualities[0]}-{qualities[-1]}, not {quality}")
    if checkpoint is None:
        checkpoint = hub_checkpoint_path(architecture, quality)
        if not checkpoint.is_file():
            raise DPFusionError(
                f"official weights for {architecture} quality {quality} not found: put "
                f"{checkpoint.name} (CompressAI model zoo, metric mse) in {checkpoint.parent}"
            )
    state = load_pretrained(_read_state_dict(checkpoint))
    try:
        model = compressai_zoo.model_architectures[architecture].from_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DPFusionError(f"{checkpoint}: weights do not fit {architecture} ({one_line(exc)})") from None
    return CodecAdapter(model, architecture, quality)


def gain_model_from_config(config: dict[str, Any]) -> GainMeanScaleHyperprior:
    try:
        return GainMeanScaleHyperprior(N=int(config["N"]), M=int(config["M"]), lambdas=config["lambdas"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DPFusionError(f"gain-hyperprior config lacks or mangles {exc}") from None


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DPFusionError(f"config not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DPFusionError(f"{path}: invalid JSON ({exc})") from None


def _build_gain(name: str, rate: float, checkpoint: Path, config: dict[str, Any]) -> CodecAdapter:
    model = gain_model_from_config(config)
    try:
        model.load_state_dict(_read_state_dict(checkpoint))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DPFusionError(f"{checkpoint}: weights do not fit the gain-hyperprior config ({one_line(exc)})") from None
    return CodecAdapter(model.float(), name, rate)


def _training_checkpoint_config(checkpoint: Path) -> dict[str, Any]:
    """A training checkpoint carries its model description; a weights file needs NAME.json or config.json beside it."""
    beside = checkpoint.with_suffix(".json")
    if not beside.is_file():
        beside = checkpoint.with_name("config.json")
    if checkpoint.suffix != ".safetensors":
        state = load_torch_file(checkpoint)
        if isinstance(state, dict) and isinstance(state.get("stage"), str):
            try:
                return json.loads(state["stage"])
            except json.JSONDecodeError as exc:
                raise DPFusionError(f"{checkpoint}: invalid stage description ({exc})") from None
    config = _read_config(beside)
    if isinstance(config, dict) and "N" not in config and isinstance(config.get("stage"), dict):
        return config["stage"]  # the config.json a training run writes: {"train": ..., "stage": ...}
    return config


def load_codec(
    name: str = DEFAULT_NAME, quality: float | None = None, checkpoint: str | Path | None = None
) -> CodecAdapter:
    """A ready base codec. ``quality`` is the zoo quality (1-8) or the gain model's rate index."""
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if name in ("default", DEFAULT_NAME):
        if checkpoint is not None:
            raise DPFusionError("the embedded default model takes no --checkpoint; use --model gain-hyperprior")
        config = _read_config(DEFAULT_DIR / "config.json")
        rate = config["base"]["default_rate"] if quality is None else quality
        return _build_gain(DEFAULT_NAME, rate, DEFAULT_DIR / config["base"]["weights"], config["base"])
    if name == GAIN_ARCHITECTURE:
        if checkpoint is None:
            raise DPFusionError(f"{GAIN_ARCHITECTURE} needs --checkpoint (a training checkpoint or safetensors)")
        return _build_gain(
            name, 0.0 if quality is None else quality, checkpoint, _training_checkpoint_config(checkpoint)
        )
    if name in ZOO_ARCHITECTURES:
        if quality is None or not math.isfinite(float(quality)) or float(quality) != int(quality):
            raise DPFusionError(f"{name} needs an integer --quality")
        return _build_zoo(name, int(quality), checkpoint)
    raise DPFusionError(f"unknown codec {name!r}; choose from {', '.join(CODEC_NAMES)}")
