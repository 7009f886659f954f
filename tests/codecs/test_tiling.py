"""Tiled transforms: the stitching is exact, the seams are small, small images are never tiled."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dpfusion import container
from dpfusion.codecs import tiling
from tests.conftest import build_tiny_codec, make_image
from tests.decoding import decode_base


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 13), st.integers(1, 13), st.integers(1, 6), st.integers(0, 3), st.sampled_from([1, 4, 16]))
def test_stitching_a_local_map_is_exact(height, width, tile, overlap, factor) -> None:
    """A map whose output at a cell depends on that cell alone (nearest upsampling) is rebuilt
    exactly from tiles of any size and overlap: every output value lands where it belongs once."""
    x = torch.randn(1, 2, height, width)
    context = torch.randn(1, 1, height, width)

    def fn(part, ctx):
        return F.interpolate(part + ctx, scale_factor=factor, mode="nearest")

    stitched = tiling.tiled(fn, x, Fraction(factor), tile, overlap, context)
    assert torch.equal(stitched, fn(x, context))
    down = tiling.tiled(lambda part, _: part[..., ::factor, ::factor], stitched, Fraction(1, factor), tile * factor,
                        overlap * factor)  # fmt: skip
    assert torch.equal(down, x + context)


@pytest.mark.parametrize("architecture", ["gain-hyperprior", "mbt2018-mean"])
def test_tiled_decode_and_encode_are_within_float_rounding_of_whole(architecture, monkeypatch) -> None:
    codec = build_tiny_codec(architecture, 0)
    image = make_image(150, 200, seed=4)
    data = container.compress(codec, image)
    whole = decode_base(data, codec=codec)
    whole_float = codec.synthesize(whole.latent, (150, 200))
    monkeypatch.setattr(tiling, "TILE_ABOVE_PIXELS", 0)
    monkeypatch.setattr(tiling, "TILE_LATENT", 3)
    monkeypatch.setattr(tiling, "OVERLAP_LATENT", 4)
    tiled_float = codec.synthesize(whole.latent, (150, 200))
    assert (tiled_float - whole_float).abs().max() < 1e-4
    # The strength map of the fusion decoder reaches each tile cut to that tile.
    ramp = torch.linspace(0, 1, whole.latent.shape[-1]).expand(1, 1, *whole.latent.shape[-2:])
    through = codec.synthesize(whole.latent, (150, 200), lambda y, part: codec.model.g_s(y) * part.mean(), ramp)
    assert not torch.allclose(through, tiled_float * ramp.mean(), atol=1e-3)  # the tiles saw different cuts
    tiled_file = container.compress(codec, image)
    monkeypatch.setattr(tiling, "TILE_ABOVE_PIXELS", 1 << 62)
    assert abs(len(tiled_file) - len(data)) <= 0.02 * len(data)
    assert abs(decode_base(tiled_file, codec=codec).image.astype(int) - whole.image).mean() < 1.0


def test_images_at_or_below_the_threshold_are_not_tiled(monkeypatch) -> None:
    codec = build_tiny_codec("gain-hyperprior", 0)
    calls = []
    monkeypatch.setattr(tiling, "tiled", lambda *a, **k: calls.append(1))
    latent = decode_base(container.compress(codec, make_image(64, 64)), codec=codec).latent
    codec.synthesize(latent, (64, 64))
    assert not calls and not tiling.needs_tiles(tiling.TILE_ABOVE_PIXELS)
    assert tiling.needs_tiles(tiling.TILE_ABOVE_PIXELS + 1)
