"""The Python API: ``model = dpfusion.load(); data = model.compress(img); model.decompress(data, tau=0.5)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

from dpfusion.codecs import loading
from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.container import check_fingerprint, compress, parse_for_decoding
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion
from dpfusion.fusion.decoding import TauSpec, checked_tau, fuse_latents, synthesize_fused, tau_to_latent_grid
from dpfusion.fusion.dial import DEFAULT_TAU_MODE, LINEAR, TAU_MODES, DialCalibration, blend, load_dial, weights_for
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import load_image, to_uint8

DEFAULT_STEPS = 1
"""Chosen on the validation photos: the module's output barely depends on the steps (1 against 10 at
tau = 0: -0.044 / -0.009 / -0.004 dB and -0.0020 / -0.0001 / -0.0000 LPIPS at rates 0 / 3 / 5, 20 photos),
and one step decodes 28% faster (docs/METHOD.md)."""
MAX_SEED = 2**63 - 1
"""Seeds are [0, 2**63 - 1]: every one is a valid torch seed, and no two spellings give the same noise."""


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise DPFusionError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return seed


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

    def __post_init__(self) -> None:
        if self.tau_mode not in TAU_MODES:
            raise DPFusionError(f"unknown tau mode {self.tau_mode!r}; choose from {', '.join(TAU_MODES)}")

    def compress(self, image: np.ndarray | str | Path, quality: float | None = None, tau: float | None = None) -> bytes:
        """A .dpf file for an (H, W, 3) uint8 array or an image path."""
        array = load_image(image) if isinstance(image, str | Path) else image
        codec = self.codec if quality is None else self.codec.with_quality(quality)
        return compress(codec, array, tau=tau)

    def decompress_many(
        self, data: bytes, taus: Sequence[TauSpec], steps: int = DEFAULT_STEPS, seed: int = 0
    ) -> list[np.ndarray]:
        """Decode one bitstream at several tau values (scalars or image-sized maps) in one batched pass."""
        check_seed(seed)
        file = parse_for_decoding(data)
        check_fingerprint(self.codec, file)
        if file.codec != self.codec.name:
            raise DPFusionError(f"file was written by {file.codec}, this model is {self.codec.name}")
        codec = self.codec.with_quality(file.quality)
        encoded = Encoded(strings=file.strings, image_size=(file.height, file.width))
        y_hat = codec.decode_latent(encoded)
        taus = [checked_tau(t, encoded.image_size) for t in taus]
        if any(not np.all(t == 1.0) for t in taus) and self.fusion is None:
            raise DPFusionError(f"tau < 1 needs a fusion module, and none is loaded for {codec.name}")
        if self.tau_mode == "paper":
            return self._fused(codec, y_hat, taus, encoded.image_size, steps, seed)
        weights = [weights_for(self.tau_mode, self.dial, t, file.quality) for t in taus]
        base = codec.synthesize(y_hat, encoded.image_size)
        real = base
        if any(np.any(w) for w in weights):
            zero = tau_to_latent_grid(0.0, encoded.image_size, tuple(y_hat.shape[2:]), codec.stride)
            fused = fuse_latents(self.fusion, y_hat, [zero], self.schedule, steps, seed)
            real = synthesize_fused(codec, self.fusion, fused, zero, encoded.image_size)
        return [to_uint8(blend(base, real, w)) for w in weights]

    def _fused(
        self, codec: CodecAdapter, y_hat: Tensor, taus: list[TauSpec], size: tuple[int, int], steps: int, seed: int
    ) -> list[np.ndarray]:
        """Eq. 4 at every tau (the paper's path): one fused latent per tau, decoded through the blocks."""
        grids = [tau_to_latent_grid(t, size, tuple(y_hat.shape[2:]), codec.stride) for t in taus]
        if self.fusion is None:
            latents = y_hat.repeat(len(taus), 1, 1, 1)
        else:
            latents = fuse_latents(self.fusion, y_hat, grids, self.schedule, steps, seed)
        return [
            to_uint8(synthesize_fused(codec, self.fusion, latent[None], grid, size))
            for latent, grid in zip(latents, grids, strict=True)
        ]

    def decompress(self, data: bytes, tau: TauSpec = 1.0, steps: int = DEFAULT_STEPS, seed: int = 0) -> np.ndarray:
        """Decode at one tau: 1 is the base codec bit for bit, 0 the most realistic."""
        return self.decompress_many(data, [tau], steps, seed)[0]


def load(
    name: str = DEFAULT_NAME,
    quality: float | None = None,
    checkpoint: str | Path | None = None,
    fusion: str | Path | None = None,
    tau_mode: str = DEFAULT_TAU_MODE,
) -> Model:
    """Load a base codec and its fusion module (the embedded one for the default model) with its dial."""
    codec = load_codec(name, quality, checkpoint)
    if fusion is None and codec.name == DEFAULT_NAME and (loading.DEFAULT_DIR / "fusion.json").is_file():
        fusion = loading.DEFAULT_DIR
    if fusion is None:
        return Model(codec, tau_mode=tau_mode)
    module, schedule = load_fusion(fusion, codec)
    return Model(codec, module, schedule, tau_mode, load_dial(fusion))
