"""One interface over any CompressAI ``CompressionModel`` with a ``g_a`` / ``g_s`` split.

The fusion module works on the quantised latent that ``g_s`` consumes, so the
adapter exposes the three pieces separately: ``encode`` (image -> strings),
``decode_latent`` (strings -> ``y_hat``) and ``synthesize`` (any latent -> image).
``decode_latent`` runs the model's own ``decompress`` with ``g_s`` swapped for a
probe that records its input: the latent is then exactly what the model would
have decoded, whatever its entropy model (hyperprior, autoregressive context,
gain units), without re-implementing any of them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from compressai.models import CompressionModel
from compressai.ops import compute_padding
from torch import Tensor, nn

from dpfusion.bitstream import QUALITY_SCALE
from dpfusion.codecs import tiling
from dpfusion.codecs.integer_context import integerize_codec
from dpfusion.codecs.pointwise import use_matrix_products
from dpfusion.codecs.registry import codec_spec
from dpfusion.codecs.strings import check_strings, guarded
from dpfusion.errors import DPFusionError

FINGERPRINT_BYTES = 8


@dataclass(frozen=True)
class Encoded:
    """What the sender transmits for one image."""

    strings: tuple[bytes, ...]
    image_size: tuple[int, int]  # (height, width) before padding


class _SynthesisProbe(nn.Module):
    """Stands in for ``g_s``: remembers the latent it was given and returns a dummy image."""

    def __init__(self) -> None:
        super().__init__()
        self.latent: Tensor | None = None

    def forward(self, latent: Tensor) -> Tensor:
        self.latent = latent.clone()
        return latent.new_zeros(1)


def state_digest(model: nn.Module) -> bytes:
    """SHA-256 over every tensor of the state dict, with names, dtypes and shapes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()


def weights_fingerprint(model: nn.Module) -> bytes:
    """The 8-byte identity of a set of weights, written into every bitstream."""
    return state_digest(model)[:FINGERPRINT_BYTES]


class CodecAdapter:
    """A frozen base codec, ready for entropy coding, seen as encode / decode_latent / synthesize."""

    def __init__(self, model: CompressionModel, name: str, quality: float):
        for attribute in ("g_a", "g_s", "compress", "decompress", "downsampling_factor"):
            if not hasattr(model, attribute):
                raise DPFusionError(f"codec {name!r} has no {attribute}: dpfusion needs a g_a/g_s split")
        spec = codec_spec(name)
        self.model = model.eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.model.update()
        self.name = spec.name
        self.variable_rate = spec.variable_rate
        self.stride = int(model.downsampling_factor)
        """The image-to-hyper-latent downsampling: images are padded to a multiple of it."""
        integerize_codec(self.model)
        use_matrix_products(self.model.g_s)
        with torch.no_grad():
            self.synthesis_stride = self.stride // int(
                self.model.g_a(torch.zeros(1, 3, self.stride, self.stride)).shape[-1]
            )
        tiling.tile_analysis(self.model.g_a, self.synthesis_stride)
        self.quality = self._checked_quality(quality)
        self.fingerprint = weights_fingerprint(self.model)

    def identity(self) -> dict[str, str]:
        """Which codec and weights a module was trained for, as every saved file records it (``base``)."""
        return {"codec": self.name, "fingerprint": self.fingerprint.hex()}

    def _checked_quality(self, quality: float) -> float:
        if self.variable_rate:
            self.model.gains(float(quality))  # validates the rate index
        elif not math.isfinite(float(quality)):
            raise DPFusionError(f"codec {self.name!r}: quality {quality} is not a finite number")
        # Encode at exactly the quality the container can carry, so the decoder, which knows
        # only the stored value, uses the same rate (1/3 would otherwise become 0.333 there).
        return round(float(quality) * QUALITY_SCALE) / QUALITY_SCALE

    def with_quality(self, quality: float) -> CodecAdapter:
        """The same weights at another operating point; only variable-rate codecs have others."""
        quality = self._checked_quality(quality)
        if quality == self.quality:
            return self
        if not self.variable_rate:
            raise DPFusionError(f"{self.name} is fixed-rate (quality {self.quality:g})")
        other = copy.copy(self)
        other.quality = quality
        return other

    @functools.cached_property
    def latent_channels(self) -> int:
        with torch.no_grad():
            return int(self.model.g_a(torch.zeros(1, 3, self.stride, self.stride)).shape[1])

    @functools.cached_property
    def symbols_per_cell(self) -> tuple[int, int]:
        """Symbols in the y and the z string (CompressAI writes ``[y, z]``) per stride x stride cell of the image."""
        with torch.no_grad():
            y = self.model.g_a(torch.zeros(1, 3, self.stride, self.stride))
            return y.numel(), self.model.h_a(y).numel()

    def latent_shape(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The hyper-latent grid ``decompress`` expects; a function of the padded size."""
        return tuple(-(-side // self.stride) for side in image_size)

    def pad(self, x: Tensor) -> Tensor:
        pad, _ = compute_padding(x.shape[-2], x.shape[-1], min_div=self.stride)
        return F.pad(x, pad, mode="replicate")

    def crop(self, x: Tensor, image_size: tuple[int, int]) -> Tensor:
        _, unpad = compute_padding(*image_size, min_div=self.stride)
        return F.pad(x, unpad)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Encoded:
        """Entropy-code one image (1, 3, H, W) in [0, 1]."""
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise DPFusionError(f"expected one RGB image of shape (1, 3, H, W), got {tuple(x.shape)}")
        out = self.model.compress(self.pad(x), **self.rate_kwargs(self.quality))
        strings = tuple(bytes(group[0]) for group in out["strings"])
        return Encoded(strings=strings, image_size=(int(x.shape[-2]), int(x.shape[-1])))

    def _with_child(self, name: str, module: nn.Module) -> CompressionModel:
        """A shallow copy of the model with one child replaced: the shared model is never modified,
        so threads decoding with it (or with its ``with_quality`` views) cannot see each other's swaps."""
        view = copy.copy(self.model)
        view._modules = {**self.model._modules, name: module}
        return view

    def _probing_synthesis(self) -> tuple[_SynthesisProbe, CompressionModel]:
        """A probe and a view of the model whose ``g_s`` is that probe."""
        probe = _SynthesisProbe()
        return probe, self._with_child("g_s", probe)

    @torch.no_grad()
    def decode_latent(self, encoded: Encoded) -> Tensor:
        """The quantised latent (1, C, h, w) that ``g_s`` would decode, exactly.

        The strings are checked and guarded first (``codecs.strings``): a forged file gives
        a DPFusionError or a wrong image, never a read past the end of the string.
        """
        check_strings(encoded.strings, len(self.symbols_per_cell), self.name)
        shape = self.latent_shape(encoded.image_size)
        cells = shape[0] * shape[1]
        strings = [[s] for s in guarded(encoded.strings, [n * cells for n in self.symbols_per_cell])]
        probe, probing = self._probing_synthesis()
        probing.decompress(strings, shape, **self.rate_kwargs(self.quality))
        if probe.latent is None:
            raise DPFusionError(f"codec {self.name!r} decompress never called g_s")
        return probe.latent

    @contextlib.contextmanager
    def swapped_analysis(self, analysis: nn.Module | None) -> Iterator[CodecAdapter]:
        """This codec with another analysis transform (the auxiliary encoder) in place of ``g_a``:
        a view over a copy of the model, so the shared model keeps its own ``g_a``."""
        if analysis is None:
            yield self
            return
        view = copy.copy(self)
        view.model = self._with_child("g_a", analysis)
        yield view

    def rate_kwargs(self, rates: Tensor | float | None) -> dict[str, Tensor | float]:
        """The ``rate`` argument (one index or one per sample) for variable-rate codecs; fixed-rate codecs take none."""
        return {"rate": rates} if self.variable_rate and rates is not None else {}

    @torch.no_grad()
    def training_latent(self, x: Tensor, rates: Tensor | None = None, analysis: nn.Module | None = None) -> Tensor:
        """Quantised latents of a batch without entropy coding.

        An eval-mode ``forward`` quantises exactly as ``compress`` does for hyperprior,
        mean-scale and gain codecs, so this equals ``decode_latent`` for them; for
        autoregressive codecs (mbt2018, cheng2020) forward rounds without the context
        model's means, a close approximation used only for training.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            probe = _SynthesisProbe()
            with self.swapped_analysis(analysis) as coder:
                coder._with_child("g_s", probe)(x, **self.rate_kwargs(rates))
        finally:
            self.model.train(was_training)
        return probe.latent

    @torch.no_grad()
    def synthesize(
        self,
        latent: Tensor,
        image_size: tuple[int, int],
        synthesis: Callable[[Tensor, Tensor | None], Tensor] | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """Decode latents (B, C, h, w) with the fixed ``g_s`` (or ``synthesis(latent, context)``, a decoder
        built around it, ``context`` a map on the latent grid such as the fusion's strength); crop to
        ``image_size``, clamp to [0, 1]. Above ``tiling.TILE_ABOVE_PIXELS`` it runs over overlapping
        tiles, each given its cut of ``context``, so memory stays bounded."""
        run = synthesis or (lambda y, _: self.model.g_s(y))
        stride = self.synthesis_stride
        if tiling.needs_tiles(latent.shape[-2] * latent.shape[-1] * stride**2):
            image = tiling.tiled(run, latent, Fraction(stride), tiling.TILE_LATENT, tiling.OVERLAP_LATENT, context)
        else:
            image = run(latent, context)
        return self.crop(image.clamp_(0, 1), image_size)

    def decompress(self, encoded: Encoded) -> Tensor:
        """The base codec's own reconstruction (tau = 1)."""
        return self.synthesize(self.decode_latent(encoded), encoded.image_size)
