"""Synthesis adapter: where its blocks sit, identity at start and at tau = 1, maps, save/load, decoding."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from dpfusion.api import Model
from dpfusion.errors import DPFusionError
from dpfusion.eval.sweep import model_signature
from dpfusion.fusion import synthesis_adapter
from dpfusion.fusion.checkpoint import CONFIG_NAME, load_fusion, save_fusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import (
    PRECISIONS,
    SynthesisAdapter,
    adapter_positions,
    adapter_strength,
    resolve_precision,
)
from tests.decoding import decode_base

torch.set_num_threads(1)
SCHEDULE = NoiseSchedule(num_train_steps=50)


@pytest.mark.parametrize(
    ("architecture", "positions"),
    [("gain-hyperprior", [1, 3, 5]), ("bmshj2018-hyperprior", [1, 3, 5]), ("cheng2020-anchor", [0, 2, 4, 6])],
)
def test_blocks_sit_at_the_end_of_each_intermediate_resolution(tiny_codec_factory, architecture, positions):
    codec = tiny_codec_factory(architecture)
    found, widths = adapter_positions(codec.model.g_s, codec.latent_channels)
    assert found == positions
    assert widths == [8] * len(positions)  # N = 8 channels between the tiny codecs' layers


def test_a_g_s_that_is_not_sequential_is_refused():
    with pytest.raises(DPFusionError, match="nn.Sequential, not Identity"):
        adapter_positions(nn.Identity(), 12)
    with pytest.raises(DPFusionError, match="no intermediate resolution"):
        adapter_positions(nn.Sequential(nn.Conv2d(12, 3, 1)), 12)


def test_strength_is_the_sixth_power_and_zero_at_tau_one():
    tau = torch.tensor([0.0, 0.3, 0.5, 1.0])
    torch.testing.assert_close(adapter_strength(tau), torch.tensor([1.0, 0.117649, 0.015625, 0.0]))


def _randomized(adapter: SynthesisAdapter, seed: int = 0) -> SynthesisAdapter:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in adapter.parameters():
            param.copy_(0.2 * torch.randn(param.shape, generator=generator))
    return adapter.eval()


def test_new_blocks_are_the_identity_and_trained_ones_fade_with_strength(tiny_gain_codec):
    g_s = tiny_gain_codec.model.g_s
    latent = torch.randn(2, tiny_gain_codec.latent_channels, 3, 4, generator=torch.Generator().manual_seed(1))
    adapter = SynthesisAdapter.for_synthesis(g_s, tiny_gain_codec.latent_channels, hidden=6)
    with torch.no_grad():
        base = g_s(latent)
        assert torch.equal(adapter(g_s, latent, 1.0), base)  # zero-initialised outer convolutions
        _randomized(adapter)
        assert torch.equal(adapter(g_s, latent, 0.0), base)
        full = adapter(g_s, latent, 1.0)
        half = adapter(g_s, latent, 0.5)
        assert (full - base).abs().mean() > 1e-3
        assert 0 < (half - base).abs().mean() < (full - base).abs().mean()
        # A uniform map at the latent grid is the scalar; a map that is 0 on one side leaves that side nearer g_s.
        torch.testing.assert_close(adapter(g_s, latent, torch.ones(2, 1, 3, 4)), full)
        split = torch.ones(2, 1, 3, 4)
        split[..., :2] = 0.0
        mixed = adapter(g_s, latent, split)
        width = mixed.shape[-1]
        left = (mixed - base)[..., : width // 4].abs().mean()
        right = (mixed - base)[..., -width // 4 :].abs().mean()
        assert left < 0.2 * right


def test_full_strength_in_place_is_the_general_formula_bit_for_bit(tiny_gain_codec):
    g_s = tiny_gain_codec.model.g_s
    latent = torch.randn(1, tiny_gain_codec.latent_channels, 3, 4, generator=torch.Generator().manual_seed(2))
    adapter = _randomized(SynthesisAdapter.for_synthesis(g_s, tiny_gain_codec.latent_channels, hidden=6))
    with torch.no_grad():
        general = adapter(g_s, latent, torch.ones(1, 1, 3, 4))  # a tensor: the scaled, out-of-place path
        assert torch.equal(adapter(g_s, latent, 1.0), general)
        assert torch.equal(adapter(g_s, latent, torch.ones(1, 1, 1, 1)), general)
        assert torch.equal(adapter(g_s, latent, 1), general)
    trained = adapter(g_s, latent, 1.0)  # with gradients: out of place, so backward still works
    trained.sum().backward()
    assert torch.equal(trained.detach(), general)
    assert all(p.grad is not None for p in adapter.parameters())


def test_widening_keeps_the_function_and_lets_the_new_channels_learn(tiny_gain_codec):
    g_s = tiny_gain_codec.model.g_s
    latent = torch.randn(1, tiny_gain_codec.latent_channels, 3, 4, generator=torch.Generator().manual_seed(2))
    adapter = SynthesisAdapter.for_synthesis(g_s, tiny_gain_codec.latent_channels, hidden=4)
    _randomized(adapter)
    wider = adapter.widened(9)
    assert wider.config == {**adapter.config, "hidden": 9}
    assert [b.inner.out_channels for b in wider.blocks] == [9] * len(adapter.blocks)
    with torch.no_grad():
        torch.testing.assert_close(wider(g_s, latent, 0.7), adapter(g_s, latent, 0.7), rtol=0, atol=1e-6)
    assert all(b.inner.weight[4:].abs().sum() > 0 for b in wider.blocks)  # new filters are not dead
    wider(g_s, latent, 1.0).square().mean().backward()
    assert all(b.outer.weight.grad[:, 4:].abs().sum() > 0 for b in wider.blocks)
    with pytest.raises(DPFusionError, match="width 4 cannot shrink to 3"):
        adapter.widened(3)


def test_blocks_built_for_another_g_s_are_refused(tiny_codec_factory):
    gain = tiny_codec_factory("gain-hyperprior")
    adapter = SynthesisAdapter.for_synthesis(gain.model.g_s, gain.latent_channels, hidden=4)
    adapter.check(gain.model.g_s, gain.latent_channels)
    cheng = tiny_codec_factory("cheng2020-anchor")
    with pytest.raises(DPFusionError, match=r"built for layers \[1, 3, 5\]"):
        adapter.check(cheng.model.g_s, cheng.latent_channels)


@pytest.fixture
def adapted_model(tiny_gain_codec, fusion_factory) -> Model:
    fusion = fusion_factory(tiny_gain_codec.latent_channels, seed=3)
    adapter = SynthesisAdapter.for_synthesis(tiny_gain_codec.model.g_s, tiny_gain_codec.latent_channels, hidden=6)
    fusion.attach_adapter(_randomized(adapter, seed=4))
    return Model(tiny_gain_codec, fusion.eval(), SCHEDULE, image_dial=False)


def test_decoding_uses_the_blocks_below_tau_one_only(adapted_model, tiny_image):
    data = adapted_model.compress(tiny_image)
    zero, one, *_ = adapted_model.decompress_many(data, [0.0, 1.0, 0.5], steps=3)
    np.testing.assert_array_equal(one, decode_base(data, codec=adapted_model.codec).image)
    without = Model(adapted_model.codec, _without_adapter(adapted_model), SCHEDULE)
    plain_zero = without.decompress(data, tau=0.0, steps=3)
    assert np.abs(zero.astype(int) - plain_zero.astype(int)).mean() > 1.0  # the blocks change the tau = 0 image
    np.testing.assert_array_equal(adapted_model.decompress(data, tau=0.0, steps=3), zero)  # batched = alone
    tau_map = np.ones(tiny_image.shape[:2], dtype=np.float32)
    np.testing.assert_array_equal(adapted_model.decompress(data, tau=tau_map, steps=3), one)


def _without_adapter(model: Model):
    config = {k: v for k, v in model.fusion.config.items() if k != "adapter"}
    plain = type(model.fusion)(**config)
    plain.load_state_dict({k: v for k, v in model.fusion.state_dict().items() if not k.startswith("adapter.")})
    return plain.eval()


def test_blocks_travel_with_the_saved_module(adapted_model, tiny_image, tmp_path):
    codec = adapted_model.codec
    save_fusion(tmp_path / "run", adapted_model.fusion, SCHEDULE, codec)
    document = json.loads((tmp_path / "run" / CONFIG_NAME).read_text())
    adapter = document["config"]["fusion"]["config"]["adapter"]
    assert adapter == {"kind": "dpfusion.synthesis-adapter", "schema": 2,
                       "config": {"positions": [1, 3, 5], "widths": [8, 8, 8], "hidden": 6}}  # fmt: skip
    fusion, schedule = load_fusion(tmp_path / "run", codec)
    data = adapted_model.compress(tiny_image)
    np.testing.assert_array_equal(
        Model(codec, fusion, schedule).decompress(data, tau=0.0, steps=3), adapted_model.decompress(data, 0.0, 3)
    )
    adapter["config"]["widths"] = [8, 8, 16]
    (tmp_path / "run" / CONFIG_NAME).write_text(json.dumps(document))
    with pytest.raises(DPFusionError, match="widths"):
        load_fusion(tmp_path / "run", codec)
    adapter["config"] = {"positions": [1], "widths": [8, 8], "hidden": 6}
    (tmp_path / "run" / CONFIG_NAME).write_text(json.dumps(document))
    with pytest.raises(DPFusionError, match="not a valid dpfusion.synthesis-adapter config"):
        load_fusion(tmp_path / "run", codec)


def test_bf16_blocks_stay_close_to_fp32_and_unknown_precisions_are_refused(tiny_gain_codec):
    g_s = tiny_gain_codec.model.g_s
    latent = torch.randn(1, tiny_gain_codec.latent_channels, 3, 4, generator=torch.Generator().manual_seed(2))
    adapter = _randomized(SynthesisAdapter.for_synthesis(g_s, tiny_gain_codec.latent_channels, hidden=6))
    with torch.no_grad():
        full = adapter(g_s, latent, 1.0)
        low = adapter(g_s, latent, 1.0, "bf16")
        mapped = adapter(g_s, latent, torch.full((1, 1, 3, 4), 0.5), "bf16")
        mapped_fp32 = adapter(g_s, latent, torch.full((1, 1, 3, 4), 0.5))
    assert low.dtype == torch.float32 and low.is_contiguous() and low.shape == full.shape
    assert not torch.equal(low, full), "bf16 blocks computed in float32: the precision was ignored"
    assert float((low - full).norm() / full.norm()) < 0.02
    assert float((mapped - mapped_fp32).norm() / full.norm()) < 0.02
    with pytest.raises(DPFusionError, match="unknown adapter precision 'fp8'"):
        adapter(g_s, latent, 1.0, "fp8")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_exactly_where_it_is_native(monkeypatch, adapted_model, tiny_image, native):
    monkeypatch.setattr(synthesis_adapter, "native_bf16", lambda device_type: native and device_type == "cpu")
    data = adapted_model.compress(tiny_image)
    decoded = {p: replace(adapted_model, precision=p).decompress(data, tau=0.0, steps=2) for p in PRECISIONS}
    assert not np.array_equal(decoded["bf16"], decoded["fp32"]), "the two precisions must be told apart"
    assert np.array_equal(decoded["auto"], decoded["bf16" if native else "fp32"])
    assert resolve_precision("auto", torch.device("meta")) == "fp32"  # autocast refuses the meta device
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    signature = model_signature(replace(adapted_model, precision="auto"), (0.0,))
    assert signature.endswith(":precision=bf16") == native, "the journal must name the precision that decoded"
    assert model_signature(replace(adapted_model, precision="auto"), (1.0,)) == model_signature(adapted_model, (1.0,))
