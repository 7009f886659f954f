"""Ready base codecs by name (see ``codecs.registry``): our gain hyperprior and the embedded default.

Importing this module registers every built-in codec (``codecs.zoo`` holds CompressAI's); local
checkpoints are read with ``weights_only=True`` or from safetensors, so no pickled code runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpfusion.codecs import zoo  # noqa: F401  (registers the CompressAI zoo codecs)
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.codecs.registry import codec_spec, register_codec
from dpfusion.codecs.state import read_state_dict
from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file, one_line, read_json_object

GAIN_ARCHITECTURE = "gain-hyperprior"
DEFAULT_NAME = "dpfusion-default"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "weights" / "default"
RELEASE_NAME = "config.json"


@dataclass(frozen=True)
class ReleaseManifest(Configurable):
    """The embedded default's ``config.json``: which weights file is the codec and its default rate.

    The codec's own config is the document beside its weights (``codec.json``), as in any run folder.
    """

    config_kind = "dpfusion.release"

    weights: str
    default_rate: float
    trained_steps: int | None = None
    fingerprint: str | None = None
    """The fingerprint of record, as a user's load computes it from the files as shipped."""

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Schema 1: ``{"base": {N, M, lambdas, weights, default_rate, trained_steps}, "fingerprint": ...}``;
        its N, M and lambdas repeat ``codec.json``."""
        base = data.get("base")
        if not isinstance(base, dict):
            raise DPFusionError("release config has no base codec")
        keys = ("weights", "default_rate", "trained_steps")
        return {**{k: base[k] for k in keys if k in base}, "fingerprint": data.get("fingerprint")}


def _gain_model(checkpoint: Path, config: dict[str, Any], source: str) -> GainMeanScaleHyperprior:
    model = GainMeanScaleHyperprior.from_document(config, source)
    try:
        model.load_state_dict(read_state_dict(checkpoint))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DPFusionError(f"{checkpoint}: weights do not fit the gain-hyperprior config ({one_line(exc)})") from None
    return model.float()


def _checkpoint_config(checkpoint: Path) -> tuple[dict[str, Any], str]:
    """A training checkpoint carries its codec's document; a weights file needs NAME.json or config.json beside it."""
    if checkpoint.suffix != ".safetensors":
        state = load_torch_file(checkpoint)
        if isinstance(state, dict) and isinstance(state.get("stage"), str):
            try:
                return json.loads(state["stage"]), str(checkpoint)
            except json.JSONDecodeError as exc:
                raise DPFusionError(f"{checkpoint}: invalid stage description ({exc})") from None
    beside = checkpoint.with_suffix(".json")
    if not beside.is_file():
        beside = checkpoint.with_name("config.json")
    return read_json_object(beside, "config"), str(beside)


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
    release = ReleaseManifest.load_config(DEFAULT_DIR / RELEASE_NAME)
    rate = release.default_rate if quality is None else quality
    weights = DEFAULT_DIR / release.weights
    return _gain_model(weights, *_checkpoint_config(weights)), rate


@register_codec(GAIN_ARCHITECTURE, bitstream_id=1, variable_rate=True, summary="our gain hyperprior from --checkpoint")
def build_gain(quality: float | None, checkpoint: Path | None) -> tuple[GainMeanScaleHyperprior, float]:
    if checkpoint is None:
        raise DPFusionError(f"{GAIN_ARCHITECTURE} needs --checkpoint (a training checkpoint or safetensors)")
    return _gain_model(checkpoint, *_checkpoint_config(checkpoint)), 0.0 if quality is None else quality


def load_codec(
    name: str = DEFAULT_NAME, quality: float | None = None, checkpoint: str | Path | None = None
) -> CodecAdapter:
    """A ready base codec. ``quality`` is the zoo quality (1-8) or the gain model's rate index."""
    spec = codec_spec(name)
    model, quality = spec.build(quality, Path(checkpoint) if checkpoint is not None else None)
    return CodecAdapter(model, spec.name, quality)
