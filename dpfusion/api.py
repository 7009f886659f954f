"""The Python API: ``model = dpfusion.load(); data = model.compress(img); model.decompress(data, tau=0.5)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpfusion.codecs import loading
from dpfusion.codecs.adapter import LATENT_STRIDE, CodecAdapter, Encoded
from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion
from dpfusion.fusion.decoding import TauSpec, fuse_latents, synthesize_fused, tau_to_latent_grid
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import load_image, to_uint8
from dpfusion.pipeline import check_fingerprint, compress, parse_for_decoding

DEFAULT_STEPS = 10
MAX_SEED = 2**63 - 1
"""Seeds are [0, 2**63 - 1]: every one is a valid torch seed, and no two spellings give the same noise."""


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise DPFusionError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return seed


@dataclass
class Model:
    """A base codec and, optionally, the fusion module trained for it."""

    codec: CodecAdapter
    fusion: LatentFusion | None = None
    schedule: NoiseSchedule | None = None

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
        grids = [tau_to_latent_grid(t, encoded.image_size, tuple(y_hat.shape[2:]), LATENT_STRIDE) for t in taus]
        if any(not bool((g == 1.0).all()) for g in grids) and self.fusion is None:
            raise DPFusionError(f"tau < 1 needs a fusion module, and none is loaded for {codec.name}")
        if self.fusion is None:
            latents = y_hat.repeat(len(taus), 1, 1, 1)
        else:
            latents = fuse_latents(self.fusion, y_hat, grids, self.schedule, steps, seed)
        return [
            to_uint8(synthesize_fused(codec, self.fusion, latent[None], grid, encoded.image_size))
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
) -> Model:
    """Load a base codec and its fusion module (the embedded one for the default model)."""
    codec = load_codec(name, quality, checkpoint)
    if fusion is None and name in ("default", DEFAULT_NAME) and (loading.DEFAULT_DIR / "fusion.json").is_file():
        fusion = loading.DEFAULT_DIR
    if fusion is None:
        return Model(codec)
    module, schedule = load_fusion(fusion, codec)
    return Model(codec, module, schedule)
