"""The three training stages: what each trains, what stays frozen bit for bit, and the eq. 2 loss."""

from __future__ import annotations

import pytest
import torch

from dpfusion.codecs.adapter import state_digest
from dpfusion.errors import DPFusionError
from dpfusion.fusion.decoding import fuse_latents
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.samplers import sampler_for
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.losses import build_perceptual_loss
from dpfusion.train.aux_stage import AuxEncoderStage, sample_rates
from dpfusion.train.base_stage import QUANTILE_LR_SCALE, BaseCodecStage
from dpfusion.train.fusion_stage import FusionStage, measure_latent_scale
from dpfusion.train.loop import run_training

torch.set_num_threads(1)


@pytest.mark.parametrize("architecture", ["gain-hyperprior", "mbt2018-mean"])
def test_codec_is_frozen_through_both_stages(
    architecture, tiny_codec_factory, crop_sampler, config_factory, fusion_stage_factory, tmp_path
):
    codec = tiny_codec_factory(architecture, 0)
    codec_before = state_digest(codec.model)
    assert codec_before == state_digest(tiny_codec_factory(architecture, 0).model)  # digests are reproducible

    aux_stage = AuxEncoderStage(codec, build_perceptual_loss("mse"), 1.0, 10.0)
    assert state_digest(aux_stage.aux) == state_digest(codec.model.g_a)  # starts as a copy of g_a
    run_training(aux_stage, crop_sampler, config_factory(steps=3, lr=1e-2), tmp_path / "aux", progress=False)
    assert state_digest(codec.model) == codec_before
    aux_after = state_digest(aux_stage.aux)
    assert aux_after != state_digest(codec.model.g_a)  # the auxiliary encoder did train

    fusion_stage = fusion_stage_factory()
    fusion_stage = FusionStage(
        codec, aux_stage.aux, fusion_stage.fusion, fusion_stage.schedule, build_perceptual_loss("mse"), 1.0
    )
    fusion_before = state_digest(fusion_stage.fusion)
    run_training(fusion_stage, crop_sampler, config_factory(steps=3, lr=1e-2), tmp_path / "fusion", progress=False)
    assert state_digest(codec.model) == codec_before
    assert state_digest(aux_stage.aux) == aux_after
    assert state_digest(fusion_stage.fusion) != fusion_before
    assert not any(p.requires_grad for p in codec.model.parameters())
    assert not fusion_stage.base.training and not fusion_stage.aux.training  # frozen parts stay in eval mode


def test_fusion_stage_gradients_reach_only_the_fusion_module(fusion_stage_factory, crop_sampler, config_factory):
    stage = fusion_stage_factory()
    stage.train()
    loss, logs = stage(crop_sampler.sample(2, torch.Generator().manual_seed(0)))
    loss.backward()
    assert set(logs) == {"latent_mse", "perceptual", "image_mse"}
    assert stage.fusion.out.weight.grad is not None and stage.fusion.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in stage.base.parameters())
    assert all(p.grad is None for p in stage.aux.parameters())
    assert {id(p) for p in stage.param_groups(config_factory())[0]["params"]} == {
        id(p) for p in stage.fusion.parameters()
    }


def test_fusion_loss_is_equation_2_at_initialisation(fusion_stage_factory, crop_sampler):
    """Zero-initialised output, so D returns y_hat: loss = w ||y_bar - y_hat||^2 (normalised) + L(x, g_s(y_hat))."""
    stage = fusion_stage_factory(latent_weight=0.3)
    codec, fusion = stage.codec, stage.fusion
    batch = crop_sampler.sample(3, torch.Generator().manual_seed(5))
    torch.manual_seed(77)
    loss, logs = stage(batch)
    torch.manual_seed(77)
    rates = sample_rates(codec, batch)  # the stage draws the rates first, from the global generator
    with torch.no_grad():
        y_hat = codec.training_latent(batch, rates)
        y_bar = codec.training_latent(batch, rates, analysis=stage.aux)
        scale = fusion.latent_scale[None, :, None, None]
        latent = ((y_bar - y_hat) / scale).pow(2).mean()
        perceptual = (codec.model.g_s(y_hat) - batch).pow(2).mean()
    assert latent > 0.01  # the perturbed aux encoder gives a different latent
    torch.testing.assert_close(logs["latent_mse"], latent, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logs["perceptual"], perceptual, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.detach(), 0.3 * latent + perceptual, rtol=1e-5, atol=1e-7)


def test_fusion_stage_trains_synthesis_blocks_at_full_strength(fusion_stage_factory, crop_sampler):
    """With blocks in g_s the image is the adapted g_s at tau = 0, and the image MSE joins the loss."""
    stage = fusion_stage_factory(latent_weight=0.3)
    codec, fusion = stage.codec, stage.fusion
    fusion.attach_adapter(SynthesisAdapter.for_synthesis(codec.model.g_s, codec.latent_channels, hidden=4))
    with torch.no_grad():
        for block in fusion.adapter.blocks:
            block.outer.weight.normal_(0, 0.3)
    stage = FusionStage(codec, stage.aux, fusion, stage.schedule, build_perceptual_loss("mse"), 0.3,
                        image_mse_weight=2.0)  # fmt: skip
    stage.train()
    batch = crop_sampler.sample(2, torch.Generator().manual_seed(5))
    torch.manual_seed(77)
    loss, logs = stage(batch)
    torch.manual_seed(77)
    rates = sample_rates(codec, batch)
    with torch.no_grad():
        y_hat = codec.training_latent(batch, rates)
        adapted = (fusion.adapter(codec.model.g_s, y_hat, 1.0) - batch).pow(2).mean()
        plain = (codec.model.g_s(y_hat) - batch).pow(2).mean()
    assert abs(float(adapted - plain)) > 1e-4  # the blocks change the image the loss sees
    torch.testing.assert_close(logs["image_mse"], adapted, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.detach(), 0.3 * logs["latent_mse"] + 3.0 * adapted, rtol=1e-5, atol=1e-7)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.adapter.parameters())
    assert all(p.grad is None for p in codec.model.parameters())
    recorded = stage.stage_config()
    assert recorded.image_mse_weight == 2.0 and recorded.fusion == fusion.document()
    assert recorded.fusion["config"]["adapter"] == fusion.adapter.document()


def test_measured_latent_scale(tiny_gain_codec, crop_sampler):
    batches = [crop_sampler.sample(4, torch.Generator().manual_seed(i)) for i in range(2)]
    torch.manual_seed(0)
    scale = measure_latent_scale(tiny_gain_codec, batches)
    assert scale.shape == (tiny_gain_codec.latent_channels,)
    assert bool((scale >= 1e-3).all()) and float(scale.max()) > 0.5  # calibrated tiny codec: latents of std ~ 4


def test_aux_stage_logs_and_trains_only_the_copy(aux_stage_factory, crop_sampler):
    stage = aux_stage_factory()
    stage.train()
    loss, logs = stage(crop_sampler.sample(2, torch.Generator().manual_seed(0)))
    assert set(logs) == {"perceptual", "bpp", "mse"}
    assert float(logs["bpp"]) > 0
    torch.testing.assert_close(loss.detach(), logs["perceptual"] + 1.0 * logs["bpp"] + 10.0 * logs["mse"])
    loss.backward()
    assert all(p.grad is None for p in stage.base.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.aux.parameters())
    assert stage.aux is not stage.base.g_a  # a copy, never the codec's own encoder
    recorded = stage.stage_config()
    assert recorded.base["fingerprint"] == stage.codec.fingerprint.hex() and recorded.mse_weight == 10.0


def test_base_stage_trains_the_codec(tiny_model_factory, crop_sampler, config_factory, tmp_path):
    codec = tiny_model_factory("gain-hyperprior", 0)
    codec.train()
    stage = BaseCodecStage(codec)
    groups = stage.param_groups(config_factory())
    assert groups[1]["lr_scale"] == QUANTILE_LR_SCALE
    assert all(
        name.endswith("quantiles") for name, p in codec.named_parameters() if any(p is q for q in groups[1]["params"])
    )
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(codec.parameters()))
    before = state_digest(codec)
    run_training(stage, crop_sampler, config_factory(steps=3), tmp_path, progress=False)
    assert state_digest(codec) != before
    assert stage.stage_config().config == {"N": codec.N, "M": codec.M, "lambdas": list(codec.lambdas)}


def test_direct_variant_trains_without_aux_and_blends_linearly(tiny_codec_factory) -> None:
    """The paper's Variant-1: no diffusion, no auxiliary encoder; tau blends D(y_hat) with y_hat."""
    codec = tiny_codec_factory("gain-hyperprior", 0)
    fusion = LatentFusion(codec.latent_channels, channels=8, units=1, heads=2, sampling="direct")
    torch.manual_seed(0)
    torch.nn.init.normal_(fusion.out.weight, std=0.3)
    stage = FusionStage(codec, None, fusion, NoiseSchedule(), build_perceptual_loss("mse"))
    loss, logs = stage(torch.rand(2, 3, 64, 64))
    assert torch.isfinite(loss) and float(logs["latent_mse"]) == 0.0
    with pytest.raises(DPFusionError, match="auxiliary"):
        FusionStage(codec, codec.model.g_a, fusion, NoiseSchedule(), build_perceptual_loss("mse"))
    y_hat = codec.training_latent(torch.rand(1, 3, 64, 64))
    taus = [torch.full((1, 1, 1, 1), t) for t in (0.0, 0.5, 1.0)]
    with torch.no_grad():
        out = fuse_latents(fusion.eval(), y_hat, taus, sampler_for(fusion, NoiseSchedule(), 10), 0)
        direct = y_hat + fusion.scale * (
            fusion(fusion.normalize(y_hat), fusion.normalize(y_hat), 0.0) - fusion.normalize(y_hat)
        )
    torch.testing.assert_close(out[0], direct[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], (0.75 * direct + 0.25 * y_hat)[0], rtol=1e-4, atol=1e-4)
    assert torch.equal(out[2], y_hat[0])
