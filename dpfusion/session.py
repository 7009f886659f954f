"""One bitstream decoded once, then rendered at any tau: what a slider, a notebook or a server holds per image.

Parsing, the fingerprint check and entropy decoding run once, when the session opens; the
latent ``y_hat``, the fusion module's condition features and the two end images (tau = 1, and
tau = 0 per steps and seed) are cached on first use. A file that carries the sender's dial for its
image decodes with that dial instead of the module's calibration. Under the ``dial`` and ``linear`` modes a
tau between the ends is then a pixel blend of cached images, arithmetic only; ``paper`` mode
runs eq. 4 per tau but reuses ``y_hat`` and the condition. A lock serialises renders of one
session, so several threads may share it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from dpfusion.bitstream import DpfFile
from dpfusion.codecs.adapter import Encoded
from dpfusion.container import check_fingerprint, parse_for_decoding
from dpfusion.errors import DPFusionError
from dpfusion.fusion.decoding import (
    DEFAULT_STEPS,
    Condition,
    Progress,
    TauSpec,
    check_seed,
    checked_tau,
    condition_of,
    fuse_latents,
    synthesize_fused,
    tau_to_latent_grid,
)
from dpfusion.fusion.dial import blend, is_whole, weights_for
from dpfusion.fusion.image_dial import image_calibration
from dpfusion.fusion.samplers import sampler_for
from dpfusion.fusion.synthesis_adapter import resolve_precision
from dpfusion.imageio import to_uint8

if TYPE_CHECKING:
    from dpfusion.api import Model

KEPT_REALISTIC_ENDS = 4
"""tau = 0 images kept per session by default, one per (steps, seed): a slider changes tau far more often."""


class DecodeSession:
    """``model.open(data)``: a parsed, entropy-decoded file, rendered with ``render`` / ``render_many``."""

    def __init__(self, model: Model, data: bytes, keep_ends: int = KEPT_REALISTIC_ENDS) -> None:
        """``keep_ends``: how many tau = 0 images (one per steps and seed) stay cached; a server holding
        many sessions keeps fewer, each is a float image."""
        file = parse_for_decoding(data)
        check_fingerprint(model.codec, file)
        if file.codec != model.codec.name:
            raise DPFusionError(f"file was written by {file.codec}, this model is {model.codec.name}")
        self.model = model
        self.file: DpfFile = file
        self.codec = model.codec.with_quality(file.quality)
        self.image_size = (file.height, file.width)
        # Entropy decoding stays on the CPU (the bitstream and its latent never depend on the device).
        self.y_hat = self.codec.decode_latent(Encoded(file.strings, self.image_size)).to(model.device)
        self._lock = threading.Lock()
        self._condition: Condition | None = None
        self._base: Tensor | None = None
        self._realistic: OrderedDict[tuple[int, int], Tensor] = OrderedDict()
        self._keep_ends = max(1, keep_ends)
        self.dial = model.dial if file.dial is None else image_calibration(file.dial, file.quality)
        """The file's own dial when the sender fitted one (``fusion.image_dial``), else the module's."""
        self._precision = resolve_precision(model.precision, model.device)
        # resolved here, outside any compiled region: torch.compile would trace through the cached probe

    def render(
        self, tau: TauSpec = 1.0, steps: int = DEFAULT_STEPS, seed: int = 0, progress: Progress | None = None
    ) -> np.ndarray:
        """The (H, W, 3) uint8 image at one tau (a number or an image-sized map)."""
        return self.render_many([tau], steps, seed, progress)[0]

    def render_many(
        self, taus: Sequence[TauSpec], steps: int = DEFAULT_STEPS, seed: int = 0, progress: Progress | None = None
    ) -> list[np.ndarray]:
        """Images at several tau; ``progress(done, total)`` after each sampler step that has to run."""
        return [to_uint8(image) for image in self.render_tensors(taus, steps, seed, progress)]

    def render_tensors(
        self, taus: Sequence[TauSpec], steps: int = DEFAULT_STEPS, seed: int = 0, progress: Progress | None = None
    ) -> list[Tensor]:
        """Images (1, 3, H, W) in [0, 1] on the model's device, before rounding to 8 bits."""
        check_seed(seed)
        checked = [checked_tau(t, self.image_size) for t in taus]
        if any(not np.all(t == 1.0) for t in checked) and self.model.fusion is None:
            raise DPFusionError(f"tau < 1 needs a fusion module, and none is loaded for {self.codec.name}")
        with self._lock:
            if self.model.tau_mode == "paper":
                return self._paper(checked, steps, seed, progress)
            weights = [weights_for(self.model.tau_mode, self.dial, t, self.file.quality) for t in checked]
            # Each end is decoded only when some tau needs it: tau = 0 alone never runs the plain g_s.
            base = None if all(is_whole(w) for w in weights) else self._base_image()
            if not any(np.any(w) for w in weights):
                return [base for _ in weights]
            real = self._realistic_image(steps, seed, progress)
            return [blend(base, real, w) for w in weights]

    def _grid(self, tau: TauSpec) -> Tensor:
        """On the CPU: the decoder asks "is tau 1 here?" of it without waiting on the device."""
        return tau_to_latent_grid(tau, self.image_size, tuple(self.y_hat.shape[2:]), self.codec.stride)

    def _fusion_condition(self) -> Condition:
        if self._condition is None:
            self._condition = condition_of(self.model.fusion, self.y_hat)
        return self._condition

    def _fuse(self, grids: list[Tensor], steps: int, seed: int, progress: Progress | None) -> Tensor:
        model = self.model
        if model.fusion is None:
            return self.y_hat.repeat(len(grids), 1, 1, 1)
        condition = self._fusion_condition() if any(not bool((g == 1.0).all()) for g in grids) else None
        sampler = sampler_for(model.fusion, model.schedule, steps, model.sampler)
        return fuse_latents(model.fusion, self.y_hat, grids, sampler, seed, condition=condition, progress=progress)

    def _base_image(self) -> Tensor:
        if self._base is None:
            self._base = self.codec.synthesize(self.y_hat, self.image_size)
        return self._base

    def _realistic_image(self, steps: int, seed: int, progress: Progress | None) -> Tensor:
        key = (steps, seed)
        if key not in self._realistic:
            zero = self._grid(0.0)
            fused = self._fuse([zero], steps, seed, progress)
            image = synthesize_fused(self.codec, self.model.fusion, fused, zero, self.image_size, self._precision)
            self._realistic[key] = image
            while len(self._realistic) > self._keep_ends:
                self._realistic.popitem(last=False)
        self._realistic.move_to_end(key)
        return self._realistic[key]

    def _paper(self, taus: list[TauSpec], steps: int, seed: int, progress: Progress | None) -> list[Tensor]:
        """Eq. 4 at every tau (the paper's path): one fused latent per tau, decoded through the blocks."""
        grids = [self._grid(t) for t in taus]
        latents = self._fuse(grids, steps, seed, progress)
        return [
            synthesize_fused(self.codec, self.model.fusion, latent[None], grid, self.image_size, self._precision)
            for latent, grid in zip(latents, grids, strict=True)
        ]
