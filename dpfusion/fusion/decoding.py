"""From the decoded ``y_hat`` to fused latents, for one or several tau values in one pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding
from torch import Tensor

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.errors import DPFusionError
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.samplers import Sampler
from dpfusion.fusion.synthesis_adapter import adapter_strength

TauSpec = float | np.ndarray
Progress = Callable[[int, int], None]
"""``progress(done, total)`` after each sampler step: what a slider's progress bar listens to."""
Condition = tuple[Tensor, Tensor]
"""The normalised ``y_hat`` and the fusion module's condition features: fixed per image, computed once."""

DEFAULT_STEPS = 1
"""Chosen on the validation photos: the module's output barely depends on the steps (1 against 10 at
tau = 0: -0.044 / -0.009 / -0.004 dB and -0.0020 / -0.0001 / -0.0000 LPIPS at rates 0 / 3 / 5, 20 photos),
and one step decodes 28% faster (docs/METHOD.md)."""
MAX_SEED = 2**63 - 1
"""Seeds are [0, 2**63 - 1]: every one is a valid torch seed, and no two spellings give the same noise."""


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise DPFusionError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return seed


def checked_tau(tau: TauSpec, image_size: tuple[int, int]) -> float | np.ndarray:
    """A scalar tau in [0, 1] as a float, or an image-sized map in [0, 1] as float32; anything else refused."""
    if np.isscalar(tau) or (isinstance(tau, np.ndarray) and tau.ndim == 0):
        value = float(tau)
        if not 0.0 <= value <= 1.0 or np.isnan(value):
            raise DPFusionError(f"tau must be in [0, 1], got {value}")
        return value
    array = np.asarray(tau, dtype=np.float32)
    if array.shape != tuple(image_size):
        shape = "x".join(str(n) for n in array.shape[::-1])
        raise DPFusionError(f"tau map is {shape}, the image is {image_size[1]}x{image_size[0]}")
    if not (np.all(array >= 0.0) and np.all(array <= 1.0)):
        raise DPFusionError("tau map values must lie in [0, 1]")
    return array


def tau_to_latent_grid(tau: TauSpec, image_size: tuple[int, int], latent_size: tuple[int, int], pad_to: int) -> Tensor:
    """A scalar tau as (1, 1, 1, 1); an image-sized map padded like the image and area-resized to the latent grid."""
    tau = checked_tau(tau, image_size)
    if isinstance(tau, float):
        return torch.full((1, 1, 1, 1), tau)
    pad, _ = compute_padding(*image_size, min_div=pad_to)
    grid = F.pad(torch.from_numpy(tau)[None, None], pad, mode="replicate")
    return F.interpolate(grid, size=latent_size, mode="area").clamp_(0.0, 1.0)


@torch.no_grad()
def condition_of(fusion: LatentFusion, y_hat: Tensor) -> Condition:
    """What every sampling step and every tau of one image share; a decode session keeps it."""
    y_hat_n = fusion.normalize(y_hat)
    return y_hat_n, fusion.encode_condition(y_hat_n)


@torch.no_grad()
def fuse_latents(
    fusion: LatentFusion,
    y_hat: Tensor,
    taus: Sequence[Tensor],
    sampler: Sampler,
    seed: int,
    *,
    condition: Condition | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Fused latents (len(taus), C, h, w) for one ``y_hat`` (1, C, h, w), all decoded in one batch.

    Every tau shares the same initial noise (drawn from ``seed`` on the CPU generator, then moved
    to ``y_hat``'s device, so the image does not depend on the device's RNG), so a tau decoded
    alone or in a batch is the same image. Entries whose tau is exactly 1 everywhere skip the
    network and are ``y_hat`` bit for bit; the formula gives the same, but skipping saves the work.
    ``sampler`` is any registered sampler (:mod:`dpfusion.fusion.samplers`); ``condition`` is
    :func:`condition_of` when the caller has it already.
    """
    if y_hat.dim() != 4 or y_hat.shape[0] != 1:
        raise DPFusionError(f"expected one latent (1, C, h, w), got {tuple(y_hat.shape)}")
    if y_hat.shape[1] != fusion.config["latent_channels"]:
        raise DPFusionError(
            f"fusion module expects {fusion.config['latent_channels']} latent channels, the codec has {y_hat.shape[1]}"
        )
    out = y_hat.repeat(len(taus), 1, 1, 1)
    active = [i for i, tau in enumerate(taus) if not bool(torch.all(tau == 1.0))]
    if not active:
        return out
    y_hat_n, cond = condition if condition is not None else condition_of(fusion, y_hat)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(y_hat.shape, generator=generator, dtype=y_hat.dtype).to(y_hat.device)
    noise = noise.expand(len(active), -1, -1, -1)
    grid = y_hat.shape[2:]
    for i in active:
        if taus[i].shape[2:] not in ((1, 1), grid):
            raise DPFusionError(f"tau grid {tuple(taus[i].shape[2:])} does not match the latent {tuple(grid)}")
    tau = torch.cat([taus[i].expand(1, 1, *grid) for i in active]).to(y_hat.device)

    def denoise(sample: Tensor, t_fraction: float) -> Tensor:
        return fusion(sample, y_hat_n, t_fraction, cond)

    fused_n = sampler.sample(denoise, noise.contiguous(), y_hat_n, tau, progress)
    out[active] = fusion.fused_latent(y_hat, fused_n, y_hat_n)
    return out


@torch.no_grad()
def synthesize_fused(
    codec: CodecAdapter, fusion: LatentFusion | None, latent: Tensor, tau: Tensor, image_size: tuple[int, int],
    precision: str = "fp32",
) -> Tensor:  # fmt: skip
    """Image (1, 3, H, W) of one fused latent (1, C, h, w) and its tau grid.

    ``codec.synthesize`` at tau = 1 or without a synthesis adapter, so tau = 1 stays the base
    codec bit for bit; the adapted ``g_s`` otherwise, its blocks in ``precision``.
    """
    if fusion is None or fusion.adapter is None or bool(torch.all(tau == 1.0)):
        return codec.synthesize(latent, image_size)
    g_s, adapter = codec.model.g_s, fusion.adapter
    if bool(torch.all(tau == 0.0)):  # full strength everywhere, as a number: the adapter adds it in place
        return codec.synthesize(latent, image_size, lambda y, _: adapter(g_s, y, 1.0, precision))
    strength = adapter_strength(tau.to(latent.device))
    return codec.synthesize(latent, image_size, lambda y, part: adapter(g_s, y, part, precision), strength)
