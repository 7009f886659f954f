"""Narrowing a trained adapter: kept channels, refitted outer convolutions, the run's record."""

from __future__ import annotations

import pytest
import torch

from dpfusion.errors import DPFusionError
from dpfusion.fusion.adapter_pruning import block_inputs, narrowed
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.train.runs import add_adapter

torch.set_num_threads(1)


def _trained_looking(codec, hidden: int = 12) -> SynthesisAdapter:
    """Random weights of a trained scale: the blocks' outer layers start at zero otherwise."""
    adapter = SynthesisAdapter.for_synthesis(codec.model.g_s, codec.latent_channels, hidden)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in adapter.parameters():
            param.copy_(0.2 * torch.randn(param.shape, generator=generator))
    return adapter.eval()


def _latents(codec, count: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(1, codec.latent_channels, 6, 5, generator=generator) for _ in range(count)]


def _block_errors(adapter: SynthesisAdapter, narrow: SynthesisAdapter, inputs: list[list[torch.Tensor]]) -> list[float]:
    with torch.no_grad():
        return [
            float(sum((wide(h) - small(h)).pow(2).sum() for h in hs))
            for wide, small, hs in zip(adapter.blocks, narrow.blocks, inputs, strict=True)
        ]


def test_narrowing_to_the_full_width_keeps_every_block_output(tiny_gain_codec):
    adapter, g_s = _trained_looking(tiny_gain_codec), tiny_gain_codec.model.g_s
    latents = _latents(tiny_gain_codec)
    same, fits = narrowed(adapter, g_s, latents, adapter.hidden)
    assert all(fit > 0.9999 for fit in fits)
    with torch.no_grad():
        torch.testing.assert_close(same(g_s, latents[0], 1.0), adapter(g_s, latents[0], 1.0), atol=5e-3, rtol=0)


def test_a_narrowed_adapter_beats_keeping_its_first_channels(tiny_gain_codec):
    adapter, g_s = _trained_looking(tiny_gain_codec), tiny_gain_codec.model.g_s
    latents = _latents(tiny_gain_codec)
    narrow, fits = narrowed(adapter, g_s, latents, 4)
    assert narrow.hidden == 4 and narrow.positions == adapter.positions and all(0.0 < fit < 1.0 for fit in fits)
    first = SynthesisAdapter(adapter.positions, adapter.widths, 4)
    with torch.no_grad():
        for wide, small in zip(adapter.blocks, first.blocks, strict=True):
            small.inner.weight.copy_(wide.inner.weight[:4])
            small.inner.bias.copy_(wide.inner.bias[:4])
            small.outer.weight.copy_(wide.outer.weight[:, :4])
            small.outer.bias.copy_(wide.outer.bias)
    inputs = block_inputs(adapter, g_s, latents)
    for pruned, truncated in zip(
        _block_errors(adapter, narrow, inputs), _block_errors(adapter, first, inputs), strict=True
    ):
        assert pruned < truncated


def test_narrowing_refuses_impossible_widths_and_no_data(tiny_gain_codec):
    adapter, g_s = _trained_looking(tiny_gain_codec), tiny_gain_codec.model.g_s
    for hidden in (0, adapter.hidden + 1):
        with pytest.raises(DPFusionError, match="cannot be narrowed"):
            narrowed(adapter, g_s, _latents(tiny_gain_codec), hidden)
    with pytest.raises(DPFusionError, match="needs some latents"):
        narrowed(adapter, g_s, [], 4)


def test_add_adapter_narrows_with_a_probe_and_says_so(tiny_gain_codec):
    fusion = LatentFusion(tiny_gain_codec.latent_channels, channels=8, units=1, heads=2)
    fusion.attach_adapter(_trained_looking(tiny_gain_codec))
    with pytest.raises(DPFusionError, match="needs latents to fit on"):
        add_adapter(fusion, tiny_gain_codec, 5)
    record = add_adapter(fusion, tiny_gain_codec, 5, lambda: _latents(tiny_gain_codec))
    assert record.startswith("narrowed 12 -> 5, refit R^2 ") and record.count("/") == 2
    assert fusion.adapter.hidden == 5 and fusion.config["adapter"]["config"]["hidden"] == 5
    assert add_adapter(fusion, tiny_gain_codec, 7) == "widened 5 -> 7"
