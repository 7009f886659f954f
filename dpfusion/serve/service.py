"""The work behind every route, free of HTTP: compress, open, decode at a tau or a map, score.

Runs on the job queue's single thread. Each session opens its bitstream once (``Model.open``) and
renders every tau from it, the path ``Model.decompress`` takes too, so an image from the page
equals ``dpfusion decompress`` of the same file, tau, steps and seed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpfusion.api import DEFAULT_STEPS, Model
from dpfusion.container import parse_for_decoding
from dpfusion.errors import DPFusionError
from dpfusion.serve.limits import Limits
from dpfusion.serve.scoring import score
from dpfusion.serve.sessions import Session
from dpfusion.serve.uploads import read_photo, read_tau_map

MAX_SEED = 2**63 - 1
SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "dandelion.png"


def safe_stem(filename: str | None, fallback: str = "image") -> str:
    """A download name from an upload's name: letters, digits, ``-`` and ``_`` only, never a path."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename or "").stem).strip("_")[:64]
    return stem or fallback


@dataclass(frozen=True)
class DecodeRequest:
    """One decode: a scalar tau or the bytes of a greyscale tau map, with the sampler's steps and seed."""

    tau: float | None = None
    tau_map: bytes | None = None
    steps: int = DEFAULT_STEPS
    seed: int = 0

    def check(self, limits: Limits) -> None:
        if (self.tau is None) == (self.tau_map is None):
            raise DPFusionError("give either tau or tau_map, not both and not neither")
        if self.tau is not None and not 0.0 <= self.tau <= 1.0:
            raise DPFusionError(f"tau must be in [0, 1], got {self.tau}")
        if not 1 <= self.steps <= limits.max_steps:
            raise DPFusionError(f"steps must be in [1, {limits.max_steps}], got {self.steps}")
        if not 0 <= self.seed <= MAX_SEED:
            raise DPFusionError(f"seed must be in [0, 2^63 - 1], got {self.seed}")

    @property
    def key(self) -> tuple:
        if self.tau_map is not None:
            return ("map", hashlib.sha256(self.tau_map).hexdigest(), self.steps, self.seed)
        if self.tau == 1.0:
            return ("tau", 1.0)  # the base decode: steps and seed play no part
        return ("tau", self.tau, self.steps, self.seed)


BASE = DecodeRequest(tau=1.0, steps=1)  # steps and seed play no part at tau = 1


class Service:
    """One loaded model plus the server's limits and sample photo."""

    def __init__(self, model: Model, limits: Limits, sample: Path) -> None:
        self.model = model
        self.limits = limits
        self.sample = sample

    def rates(self) -> dict[str, float | bool]:
        """The range of the rate picker: a rate index for variable-rate codecs, one fixed quality otherwise."""
        codec = self.model.codec
        top = float(codec.model.num_rates - 1) if codec.variable_rate else codec.quality
        low = 0.0 if codec.variable_rate else codec.quality
        return {"variable": codec.variable_rate, "min": low, "max": top, "default": codec.quality}

    def compress(self, photo: bytes | None, quality: float | None, stem: str) -> Session:
        """A new session for uploaded bytes, or for the sample photo when ``photo`` is None."""
        if photo is None:
            photo, stem = self.sample.read_bytes(), self.sample.stem
        original, notes = read_photo(photo, self.limits.max_pixels)
        return self._encode(original, quality, stem, notes)

    def recompress(self, session: Session, quality: float) -> Session:
        if session.original is None:
            raise DPFusionError("an opened .dpf has no original to re-encode at another rate")
        return self._encode(session.original, quality, session.stem, session.notes)

    def _encode(self, original: np.ndarray, quality: float | None, stem: str, notes: list[str]) -> Session:
        if quality is not None and not self.model.codec.variable_rate and quality != self.model.codec.quality:
            raise DPFusionError(f"{self.model.codec.name} is fixed-rate (quality {self.model.codec.quality:g})")
        data = self.model.compress(original, quality=quality)
        return self.open(data, stem, original, notes)

    def open(
        self, data: bytes, stem: str, original: np.ndarray | None = None, notes: list[str] | None = None
    ) -> Session:
        """A session for a .dpf, opened for decoding at once: a file from other weights is refused before any
        slider moves. One tau = 0 image is cached per session (each is a float image; 16 sessions are kept)."""
        if not data:
            raise DPFusionError("dpf: the uploaded file is empty")
        file = parse_for_decoding(data)
        if file.pixels > self.limits.max_pixels:
            raise DPFusionError(
                f"file declares a {file.width}x{file.height} image, over this server's limit of "
                f"{self.limits.max_pixels} pixels"
            )
        decoder = self.model.open(data, keep_ends=1)
        session = Session(data, file, decoder, original, stem, self.limits.cached_images, list(notes or []))
        self.decode(session, BASE)
        return session

    def decode(self, session: Session, request: DecodeRequest) -> np.ndarray:
        request.check(self.limits)
        image = session.cached(request.key)
        if image is None:
            tau = request.tau
            if request.tau_map is not None:
                size = (session.file.height, session.file.width)
                tau = read_tau_map(request.tau_map, size, self.limits.max_pixels)
            image = session.decoder.render(tau, steps=request.steps, seed=request.seed)
            session.remember(request.key, image)
        return image

    def metrics(self, session: Session, request: DecodeRequest) -> dict[str, object]:
        """Scores of the decoded image against the original (when there is one) and against tau = 1."""
        shown = self.decode(session, request)
        base = self.decode(session, BASE)
        against_original = score(shown, session.original) if session.original is not None else None
        return {"vs_original": against_original, "vs_tau1": score(shown, base)}
