"""Ready base codecs by name (see ``codecs.registry``): our gain hyperprior and the embedded default.

Importing this module registers every built-in codec (``codecs.zoo`` holds CompressAI's); local
checkpoints are read with ``weights_only=True`` or from safetensors, so no pickled code runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpfusion.codecs import zoo  # noqa: F401  (registers the CompressAI zoo codecs)
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.codecs.registry import codec_spec, register_codec
from dpfusion.codecs.state import read_state_dict
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file, one_line, read_json_object

GAIN_ARCHITECTURE = "gain-hyperprior"
DEFAULT_NAME = "dpfusion-default"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "weights" / "default"


def gain_model_from_config(config: dict[str, Any]) -> GainMeanScaleHyperprior:
    try:
        return GainMeanScaleHyperprior(N=int(config["N"]), M=int(config["M"]), lambdas=config["lambdas"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DPFusionError(f"gain-hyperprior config lacks or mangles {exc}") from None


def _gain_model(checkpoint: Path, config: dict[str, Any]) -> GainMeanScaleHyperprior:
    model = gain_model_from_config(config)
    try:
        model.load_state_dict(read_state_dict(checkpoint))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DPFusionError(f"{checkpoint}: weights do not fit the gain-hyperprior config ({one_line(exc)})") from None
    return model.float()


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
    config = read_json_object(beside, "config")
    if "N" not in config and isinstance(config.get("stage"), dict):
        return config["stage"]  # the config.json a training run writes: {"train": ..., "stage": ...}
    return config


@register_codec(
    DEFAULT_NAME,
    bitstream_id=0,
    variable_rate=True,
    aliases=("default",),
    summary="embedded variable-rate gain hyperprior (--quality is a rate index, fractions interpolate)",
)
def build_default(quality: float | None, checkpoint: Path | None) -> tuple[GainMeanScaleHyperprior, float]:
    if checkpoint is not None:
        raise DPFusionError("the embedded default model takes no --checkpoint; use --model gain-hyperprior")
    base = read_json_object(DEFAULT_DIR / "config.json", "config")["base"]
    rate = base["default_rate"] if quality is None else quality
    return _gain_model(DEFAULT_DIR / base["weights"], base), rate


@register_codec(GAIN_ARCHITECTURE, bitstream_id=1, variable_rate=True, summary="our gain hyperprior from --checkpoint")
def build_gain(quality: float | None, checkpoint: Path | None) -> tuple[GainMeanScaleHyperprior, float]:
    if checkpoint is None:
        raise DPFusionError(f"{GAIN_ARCHITECTURE} needs --checkpoint (a training checkpoint or safetensors)")
    return _gain_model(checkpoint, _training_checkpoint_config(checkpoint)), 0.0 if quality is None else quality


def load_codec(
    name: str = DEFAULT_NAME, quality: float | None = None, checkpoint: str | Path | None = None
) -> CodecAdapter:
    """A ready base codec. ``quality`` is the zoo quality (1-8) or the gain model's rate index."""
    spec = codec_spec(name)
    model, quality = spec.build(quality, Path(checkpoint) if checkpoint is not None else None)
    return CodecAdapter(model, spec.name, quality)
