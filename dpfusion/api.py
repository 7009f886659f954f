"""The Python API: ``model = dpfusion.load(); data = model.compress(img); model.decompress(data, tau=0.5)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dpfusion.bitstream import pack
from dpfusion.codecs import loading
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.container import compress
from dpfusion.devices import resolve_device
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_dial, load_fusion
from dpfusion.fusion.compiled import compile_adapter
from dpfusion.fusion.decoding import DEFAULT_STEPS, MAX_SEED, TauSpec, check_seed
from dpfusion.fusion.dial import DEFAULT_TAU_MODE, LINEAR, TAU_MODES, DialCalibration
from dpfusion.fusion.image_dial import fit_image_dial, fit_unavailable
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.samplers import SAMPLERS
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import check_precision
from dpfusion.imageio import load_image
from dpfusion.session import KEPT_REALISTIC_ENDS, DecodeSession

__all__ = ["DEFAULT_STEPS", "MAX_SEED", "DecodeSession", "Model", "check_seed", "load"]


@dataclass
class Model:
    """A base codec and, optionally, the fusion module trained for it.

    ``tau_mode`` says what a tau between 0 and 1 renders (see :mod:`dpfusion.fusion.dial`): the
    calibrated blend of the two ends (``dial``), the plain blend (``linear``) or eq. 4 (``paper``).
    """

    codec: CodecAdapter
    fusion: LatentFusion | None = None
    schedule: NoiseSchedule | None = None
    tau_mode: str = DEFAULT_TAU_MODE
    dial: DialCalibration = field(default=LINEAR)
    device: torch.device = field(default=torch.device("cpu"))
    sampler: str | None = None
    """A registered sampler's name (:mod:`dpfusion.fusion.samplers`); None: the one the module was trained for."""
    image_dial: bool = True
    """Whether :meth:`compress` fits the dial to each image and writes it into the file
    (:mod:`dpfusion.fusion.image_dial`); only under the ``dial`` mode, with a fusion module. On by default:
    a module calibration is even only on average over photos, and loses evenness on a kind of photo it was
    not calibrated on (the validation folder hold-out, docs/METHOD.md). It costs the encoder a decode of both
    ends and 19 LPIPS scores; ``False`` writes a file that decodes with the module's calibration."""
    precision: str = "auto"
    """How the synthesis adapter's blocks compute (tau < 1): ``fp32``, ``bf16`` (much faster on CPUs with AMX
    tiles and on GPUs, within noise of fp32; docs/METHOD.md) or ``auto``, bf16 where the device computes it
    natively. ``g_s`` itself, and so tau = 1, is float32 and bit-exact either way."""

    def __post_init__(self) -> None:
        if self.tau_mode not in TAU_MODES:
            raise DPFusionError(f"unknown tau mode {self.tau_mode!r}; choose from {', '.join(TAU_MODES)}")
        check_precision(self.precision)
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise DPFusionError(f"unknown sampler {self.sampler!r}; choose from {', '.join(sorted(SAMPLERS))}")

    def compress(self, image: np.ndarray | str | Path, quality: float | None = None, tau: float | None = None) -> bytes:
        """A .dpf file for an (H, W, 3) uint8 array or an image path."""
        array = load_image(image) if isinstance(image, str | Path) else image
        codec = self.codec if quality is None else self.codec.with_quality(quality)
        self.check_image_dial()
        data = compress(codec, array, tau=tau)
        return self._with_image_dial(array, data) if self.fits_image_dial else data

    @property
    def fits_image_dial(self) -> bool:
        """Whether :meth:`compress` fits a per-image dial: asked for, under the ``dial`` mode, with a module."""
        return self.image_dial and self.fusion is not None and self.tau_mode == "dial"

    def check_image_dial(self) -> None:
        """Refuse, before any work, a fit that cannot run; an encoder that silently fell back would write
        a different file on a machine without the metric's weights."""
        reason = fit_unavailable() if self.fits_image_dial else None
        if reason is not None:
            raise DPFusionError(
                f"the per-image dial needs LPIPS-alex: {reason}; or encode without it (--no-image-dial)"
            )

    def _with_image_dial(self, image: np.ndarray, data: bytes) -> bytes:
        """The sender decodes both ends it sends, measures this image's LPIPS along their blend and stores
        the dial that makes it even; costs the encoder one decode of each end and the probes' LPIPS."""
        session = self.open(data)
        base, real = session.render_tensors([1.0, 0.0])
        weights = fit_image_dial(image, base, real)
        return data if weights is None else pack(replace(session.file, dial=weights))

    def to(self, device: str | torch.device) -> Model:
        """Run ``g_s`` and the fusion module on ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``).

        Entropy coding (``g_a``, the hyperprior, the entropy models) stays on the CPU, so a
        bitstream never depends on the device; the sampler's noise is drawn on the CPU too.
        """
        self.device = resolve_device(device)
        self.codec.model.g_s.to(self.device)
        if self.fusion is not None:
            self.fusion.to(self.device)
        return self

    def compile(self) -> Model:
        """Compile ``g_s`` with the synthesis adapter's blocks (tau < 1) with ``torch.compile``; optional,
        falls back to eager where compilation is unavailable (see :mod:`dpfusion.fusion.compiled`)."""
        if self.fusion is not None and self.fusion.adapter is not None:
            compile_adapter(self.fusion.adapter)
        return self

    def open(self, data: bytes, keep_ends: int = KEPT_REALISTIC_ENDS) -> DecodeSession:
        """Parse, check and entropy-decode a .dpf once; the session renders any tau, steps and seed from it
        (``keep_ends`` tau = 0 images, one per steps and seed, stay cached)."""
        return DecodeSession(self, data, keep_ends)

    def decompress_many(
        self, data: bytes, taus: Sequence[TauSpec], steps: int = DEFAULT_STEPS, seed: int = 0
    ) -> list[np.ndarray]:
        """Decode one bitstream at several tau values (scalars or image-sized maps) in one batched pass."""
        check_seed(seed)
        return self.open(data).render_many(taus, steps, seed)

    def decompress(self, data: bytes, tau: TauSpec = 1.0, steps: int = DEFAULT_STEPS, seed: int = 0) -> np.ndarray:
        """Decode at one tau: 1 is the base codec bit for bit, 0 the most realistic."""
        return self.decompress_many(data, [tau], steps, seed)[0]


def load(
    name: str = DEFAULT_NAME,
    quality: float | None = None,
    checkpoint: str | Path | None = None,
    fusion: str | Path | None = None,
    tau_mode: str = DEFAULT_TAU_MODE,
    device: str | torch.device = "cpu",
    sampler: str | None = None,
    compile: bool = False,
    image_dial: bool = True,
    precision: str = "auto",
) -> Model:
    """Load a base codec and its fusion module (the embedded one for the default model) with its dial;
    ``device`` runs the decoder there (see :meth:`Model.to`), ``compile`` see :meth:`Model.compile`,
    ``image_dial`` see :attr:`Model.image_dial`, ``precision`` :attr:`Model.precision`."""
    device = resolve_device(device)
    codec = load_codec(name, quality, checkpoint)
    if fusion is None and codec.name == DEFAULT_NAME and (loading.DEFAULT_DIR / "fusion.json").is_file():
        fusion = loading.DEFAULT_DIR
    if fusion is None:
        model = Model(codec, tau_mode=tau_mode, sampler=sampler, image_dial=image_dial, precision=precision)
    else:
        module, schedule = load_fusion(fusion, codec)
        dial = load_dial(fusion)
        model = Model(codec, module, schedule, tau_mode, dial, sampler=sampler, image_dial=image_dial,
                      precision=precision)  # fmt: skip
    model = model.to(device)
    return model.compile() if compile else model
