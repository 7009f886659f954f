"""dpfusion: a decoder-side fidelity/realism dial (tau) for learned image codecs."""

import warnings

# CompressAI 1.2.8 scripts a helper at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from dpfusion.api import Model, load  # noqa: E402
from dpfusion.bitstream import BitstreamError, DpfFile, pack, unpack  # noqa: E402
from dpfusion.codecs.adapter import CodecAdapter  # noqa: E402
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior  # noqa: E402
from dpfusion.codecs.loading import ReleaseManifest, load_codec  # noqa: E402
from dpfusion.configs import Configurable, register_to_config  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.eval.evaluation import evaluate  # noqa: E402
from dpfusion.eval.models import ModelCache  # noqa: E402
from dpfusion.eval.scoring import Scorer  # noqa: E402
from dpfusion.eval.sweep import SweepSpec  # noqa: E402
from dpfusion.fusion.adapter_pruning import narrowed as narrowed_adapter  # noqa: E402
from dpfusion.fusion.checkpoint import FusionManifest, load_fusion, save_fusion  # noqa: E402
from dpfusion.fusion.dial import DialCalibration  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.sampler import TauDDIMSampler  # noqa: E402
from dpfusion.fusion.samplers import SAMPLERS, get_sampler, register_sampler  # noqa: E402
from dpfusion.fusion.schedule import NoiseSchedule  # noqa: E402
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter  # noqa: E402
from dpfusion.memory import check_memory, largest_pixels, predicted_peak  # noqa: E402
from dpfusion.session import DecodeSession  # noqa: E402
from dpfusion.train.loop import RunConfig, TrainConfig  # noqa: E402
from dpfusion.train.runs import (  # noqa: E402
    CodecChoice,
    FusionOptions,
    add_adapter,
    initial_fusion,
    new_fusion,
    train_aux,
    train_base,
    train_config,
    train_fusion,
)

__version__ = "0.1.0"
__all__ = [
    "BitstreamError",
    "CodecAdapter",
    "CodecChoice",
    "Configurable",
    "DPFusionError",
    "DecodeSession",
    "DialCalibration",
    "DpfFile",
    "FusionManifest",
    "FusionOptions",
    "GainMeanScaleHyperprior",
    "LatentFusion",
    "Model",
    "ModelCache",
    "NoiseSchedule",
    "ReleaseManifest",
    "RunConfig",
    "SAMPLERS",
    "Scorer",
    "SweepSpec",
    "SynthesisAdapter",
    "TauDDIMSampler",
    "TrainConfig",
    "add_adapter",
    "check_memory",
    "evaluate",
    "get_sampler",
    "initial_fusion",
    "largest_pixels",
    "load",
    "load_codec",
    "load_fusion",
    "narrowed_adapter",
    "new_fusion",
    "pack",
    "predicted_peak",
    "register_sampler",
    "register_to_config",
    "save_fusion",
    "train_aux",
    "train_base",
    "train_config",
    "train_fusion",
    "unpack",
]
