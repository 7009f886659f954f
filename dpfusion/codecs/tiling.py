"""Full-resolution transforms over overlapping tiles, so that memory is bounded by the tile, not the photo.

``g_a`` and ``g_s`` hold several full-resolution feature maps at once (about 0.5 KB per pixel
for the default model); on overlapping tiles only one tile's maps are alive. Each tile is
run with ``overlap`` extra units on every side that has a neighbour, and only its centre
is kept: with an overlap at least the transform's receptive field, the centre sees the
same inputs as in the whole image, and the result differs from the untiled one only by
float summation order (measured by ``benchmarks/tiling_seams.py``). Images at or below
``TILE_ABOVE_PIXELS`` are never tiled, so their decode is exactly the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import torch
from torch import Tensor, nn

TILE_ABOVE_PIXELS = 2048 * 2048
"""Padded images up to 4.2 MP run whole (bit-exact with an untiled decode); larger ones are tiled."""
TILE_LATENT = 48
"""Tile side in latent cells (768 pixels for a stride-16 transform)."""
OVERLAP_LATENT = 4
"""Overlap in latent cells (64 pixels): beyond the reach of the default ``g_s`` (4 transposed 5x5
convolutions of stride 2 see 3.75 cells), so the seams are float rounding only."""


def tiled(
    fn: Callable[[Tensor, Tensor | None], Tensor],
    x: Tensor,
    scale: Fraction,
    tile: int,
    overlap: int,
    context: Tensor | None = None,
) -> Tensor:
    """``fn(x_tile, context_tile)`` over overlapping tiles of ``x`` (units of ``x``), centres stitched.

    ``scale`` is output size over input size (16 for ``g_s``, 1/16 for ``g_a``); ``context`` is a
    map on ``x``'s grid cut like ``x`` (a (.., 1, 1) one is passed whole).
    """
    height, width = x.shape[-2:]
    out: Tensor | None = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(height, top + tile), min(width, left + tile)
            t0, l0 = max(0, top - overlap), max(0, left - overlap)
            t1, l1 = min(height, bottom + overlap), min(width, right + overlap)
            part = None
            if context is not None:
                part = context if context.shape[-2:] == (1, 1) else context[..., t0:t1, l0:l1]
            y = fn(x[..., t0:t1, l0:l1], part)
            if out is None:
                out = y.new_empty(*y.shape[:-2], int(height * scale), int(width * scale))
            rows = slice(int((top - t0) * scale), int((bottom - t0) * scale))
            cols = slice(int((left - l0) * scale), int((right - l0) * scale))
            out[..., int(top * scale) : int(bottom * scale), int(left * scale) : int(right * scale)] = y[
                ..., rows, cols
            ]
    return out


def needs_tiles(pixels: int) -> bool:
    return pixels > TILE_ABOVE_PIXELS  # read at call time, so a test or benchmark can lower it


def _in_pixels(stride: int) -> tuple[int, int]:
    return TILE_LATENT * stride, OVERLAP_LATENT * stride


class _TiledAnalysis:
    """``g_a`` of a large image over tiles of ``TILE_LATENT`` cells (at the transform's stride)."""

    def __init__(self, analysis: nn.Module, stride: int):
        self.analysis, self.stride = analysis, stride

    def __call__(self, x: Tensor) -> Tensor:
        run = type(self.analysis).forward.__get__(self.analysis)
        if not needs_tiles(x.shape[-2] * x.shape[-1]) or torch.is_grad_enabled():
            return run(x)
        return tiled(lambda part, _: run(part), x, Fraction(1, self.stride), *_in_pixels(self.stride))


def tile_analysis(analysis: nn.Module, stride: int) -> None:
    """Make ``analysis`` (a codec's ``g_a``) run over tiles for large images; its parameters stay as they are."""
    if not isinstance(analysis.forward, _TiledAnalysis):
        analysis.forward = _TiledAnalysis(analysis, stride)
