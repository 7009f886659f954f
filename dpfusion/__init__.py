"""dpfusion: a decoder-side fidelity/realism dial (tau) for learned image codecs."""

import warnings

# CompressAI 1.2.8 scripts a helper at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from dpfusion.api import Model, load  # noqa: E402
from dpfusion.bitstream import BitstreamError, DpfFile, pack, unpack  # noqa: E402
from dpfusion.codecs.adapter import CodecAdapter  # noqa: E402
from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior  # noqa: E402
from dpfusion.codecs.loading import load_codec  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.sampler import TauDDIMSampler  # noqa: E402
from dpfusion.fusion.samplers import SAMPLERS, get_sampler, register_sampler  # noqa: E402
from dpfusion.fusion.schedule import NoiseSchedule  # noqa: E402
from dpfusion.session import DecodeSession  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "BitstreamError",
    "CodecAdapter",
    "DPFusionError",
    "DecodeSession",
    "DpfFile",
    "GainMeanScaleHyperprior",
    "LatentFusion",
    "Model",
    "NoiseSchedule",
    "SAMPLERS",
    "TauDDIMSampler",
    "get_sampler",
    "load",
    "load_codec",
    "pack",
    "register_sampler",
    "unpack",
]
