"""The adversarial fusion stage: the critic's game, its gradients, and exact resume of both players."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from dpfusion.errors import DPFusionError
from dpfusion.fusion.checkpoint import load_fusion
from dpfusion.losses import build_perceptual_loss
from dpfusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from dpfusion.train.discriminator import PatchDiscriminator, critic_loss, generator_loss
from dpfusion.train.export import export_fusion_checkpoint, final_weights
from dpfusion.train.fusion_stage import FusionStage
from dpfusion.train.loop import TrainConfig, run_training


def _adversarial_stage(fusion_stage_factory, weight: float = 0.5, seed: int = 0) -> FusionStage:
    plain = fusion_stage_factory(seed=seed)
    torch.manual_seed(seed)
    return FusionStage(plain.codec, plain.aux, plain.fusion, plain.schedule, build_perceptual_loss("mse"), 1.0,
                       adversarial_weight=weight)  # fmt: skip


def test_losses_are_the_non_saturating_gan_pair():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected_critic = -F.logsigmoid(real).mean() - F.logsigmoid(-fake).mean()
    torch.testing.assert_close(critic_loss(real, fake), expected_critic)
    torch.testing.assert_close(generator_loss(fake), -F.logsigmoid(fake).mean())


def test_critic_sees_the_latent_and_scores_patches():
    critic = PatchDiscriminator(latent_channels=12, width=8).eval()
    image = torch.rand(2, 3, 64, 64)
    latent = torch.randn(2, 12, 4, 4)
    logits = critic(image, latent)
    assert logits.shape == (2, 1, 8, 8)
    assert not torch.allclose(logits, critic(image, latent + 1.0))  # conditional: the latent changes the verdict


def test_adversarial_term_joins_the_loss_and_trains_only_the_decoder(fusion_stage_factory, crop_sampler):
    stage = _adversarial_stage(fusion_stage_factory).train()
    batch = crop_sampler.sample(2, torch.Generator().manual_seed(3))
    torch.manual_seed(11)
    loss, logs = stage(batch)
    torch.manual_seed(11)
    plain = FusionStage(stage.codec, stage.aux, stage.fusion, stage.schedule, build_perceptual_loss("mse"), 1.0)
    plain_loss, _ = plain.train()(batch)
    torch.testing.assert_close(loss.detach(), plain_loss.detach() + 0.5 * logs["adversarial"])
    assert float(logs["adversarial"]) > 0
    loss.backward()
    assert all(p.grad is None for p in stage.critic.parameters())  # the decoder's loss never moves the critic
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.fusion.parameters())
    assert all(p.grad is None for p in stage.codec.model.parameters())
    critic, critic_logs = stage.critic_loss()
    critic.backward()
    assert all(p.grad is not None for p in stage.critic.parameters())
    assert set(critic_logs) == {"critic_real", "critic_fake"}
    assert stage.stage_config().adversarial_weight == 0.5


def test_critic_learns_to_tell_real_from_decoded(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    stage = _adversarial_stage(fusion_stage_factory, weight=1e-6)  # the decoder barely fights back
    run_training(stage, crop_sampler, config_factory(steps=40, checkpoint_every=40, lr=2e-3), tmp_path, progress=False)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    gap = [float(r.split(",")[header.index("critic_real")]) - float(r.split(",")[header.index("critic_fake")])
           for r in rows[1:]]  # fmt: skip
    assert sum(gap[-5:]) / 5 > sum(gap[:5]) / 5 + 0.1, gap


def test_resume_restores_the_critic_and_its_optimizer(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    config = config_factory(steps=6, checkpoint_every=3)
    straight = run_training(_adversarial_stage(fusion_stage_factory), crop_sampler, config, tmp_path / "a",
                            progress=False)  # fmt: skip
    run_training(_adversarial_stage(fusion_stage_factory), crop_sampler, config_factory(steps=3, checkpoint_every=3),
                 tmp_path / "b", progress=False)  # fmt: skip
    torch.manual_seed(999)
    resumed = run_training(_adversarial_stage(fusion_stage_factory), crop_sampler, config, tmp_path / "b",
                           resume=True, progress=False)  # fmt: skip
    for key in ("trainable", "critic"):
        for name, value in straight[key].items():
            torch.testing.assert_close(resumed[key][name], value, rtol=0, atol=0, msg=f"{key}.{name}")
    assert "critic_optimizer" in load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    assert not torch.equal(straight["critic"]["body.0.parametrizations.weight.original"],
                           _adversarial_stage(fusion_stage_factory).critic.state_dict()[
                               "body.0.parametrizations.weight.original"])  # fmt: skip


@pytest.mark.parametrize("half", [False, True])
def test_an_interrupted_run_exports_its_ema_module(fusion_stage_factory, crop_sampler, config_factory, tmp_path, half):
    stage = _adversarial_stage(fusion_stage_factory)
    state = run_training(stage, crop_sampler, config_factory(steps=4, ema_decay=0.5), tmp_path / "run", progress=False)
    weights = export_fusion_checkpoint(tmp_path / "run", tmp_path / "module", stage.codec, half=half)
    stored = {tensor.dtype for tensor in load_file(str(weights)).values()}
    assert stored == {torch.float16 if half else torch.float32}
    fusion, _ = load_fusion(tmp_path / "module", stage.codec)
    for name, value in final_weights(state).items():
        expected = value.half().float() if half else value
        torch.testing.assert_close(fusion.state_dict()[name], expected, rtol=0, atol=0)


def test_the_critic_runs_at_its_own_learning_rate(fusion_stage_factory, crop_sampler, config_factory, tmp_path):
    config = config_factory(steps=2, checkpoint_every=2, lr=1e-4, critic_lr_scale=4.0)
    run_training(_adversarial_stage(fusion_stage_factory), crop_sampler, config, tmp_path, progress=False)
    groups = load_checkpoint(tmp_path / CHECKPOINT_NAME)["critic_optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [pytest.approx(4e-4)]
    assert [g["betas"] for g in groups] == [(0.5, 0.999)]


def test_a_non_positive_critic_rate_is_refused():
    with pytest.raises(DPFusionError, match="critic_lr_scale"):
        TrainConfig.from_config({"critic_lr_scale": 0.0})
