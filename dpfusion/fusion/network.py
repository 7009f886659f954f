"""The adaptive latent fusion network ``D(y_t, y_hat, t/T)`` (paper Fig. 4).

Main path: input conv, ``units`` x (two time-aware ResBlocks + one attention
block), output conv. Condition path: the same kind of unit, without time, over
``y_hat``; its features are concatenated after the input conv. Because the
condition path sees only ``y_hat``, ``encode_condition`` runs once per image and
every sampling step reuses it.

Latents are divided by a per-channel scale (measured on training latents) so
that unit-variance diffusion noise means the same thing for every codec; the
output is a residual on ``y_hat`` and starts at zero, so an untrained module
returns ``y_hat``. An optional ``SynthesisAdapter`` (blocks inside ``g_s``) is part of the
module: trained with it, saved with it, applied by the decoder when tau < 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpfusion.configs import Configurable, register_to_config
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(channels, 32)
    return nn.GroupNorm(groups, channels)


def timestep_embedding(t_fraction: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of the continuous time t/T in [0, 1], shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=t_fraction.device) / half)
    angles = 1000.0 * t_fraction.float()[:, None] * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(emb, (0, dim % 2))  # an odd width gets one zero feature, so any channel count works


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with an optional time embedding added in between.

    The time shift is added *after* the second GroupNorm: added before it, a per-channel
    constant is removed again by the normalisation (entirely when each group holds one
    channel, i.e. for widths up to 32), and the network could not tell the steps apart.
    """

    def __init__(self, channels: int, time_dim: int | None):
        super().__init__()
        self.norm1 = _group_norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(time_dim, channels) if time_dim else None
        self.norm2 = _group_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.time is not None and emb is not None:
            h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(F.silu(h))
        return x + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over latent positions (memory-efficient SDPA kernel)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.norm = _group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2)
        # Contiguous q/k/v keep SDPA on its fused CPU kernel; strided views fall back to a ~7x slower path.
        q, k, v = qkv.contiguous().unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class FusionUnit(nn.Module):
    def __init__(self, channels: int, time_dim: int | None, heads: int):
        super().__init__()
        self.res1 = ResBlock(channels, time_dim)
        self.res2 = ResBlock(channels, time_dim)
        self.attn = AttentionBlock(channels, heads)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.attn(self.res2(self.res1(x, emb), emb))


SAMPLING_MODES = ("ddim", "direct")
"""``ddim``: the paper's method. ``direct``: the paper's Variant-1 ablation, one pass from ``y_hat``
with no diffusion, its output blended with ``y_hat`` by the same tau weights."""


class LatentFusion(Configurable, nn.Module):
    """Predicts a decodable latent from a noisy one, conditioned on the codec's ``y_hat``.

    ``adapter`` is a ``SynthesisAdapter``, its document, or (as schema 1 stored it) its arguments.
    """

    config_kind = "dpfusion.fusion"
    config_parts = {"adapter": SynthesisAdapter}

    @register_to_config
    def __init__(
        self,
        latent_channels: int,
        channels: int = 64,
        units: int = 2,
        heads: int = 4,
        sampling: str = "ddim",
        adapter: SynthesisAdapter | Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        self.latent_channels, self.channels, self.sampling = latent_channels, channels, sampling
        time_dim = 4 * channels
        self.register_buffer("latent_scale", torch.ones(latent_channels))
        self.time_mlp = nn.Sequential(nn.Linear(channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.cond_in = nn.Conv2d(latent_channels, channels, 3, padding=1)
        self.cond_units = nn.ModuleList(FusionUnit(channels, None, heads) for _ in range(units))
        self.main_in = nn.Conv2d(latent_channels, channels, 3, padding=1)
        self.merge = nn.Conv2d(2 * channels, channels, 1)
        self.units = nn.ModuleList(FusionUnit(channels, time_dim, heads) for _ in range(units))
        self.out_norm = _group_norm(channels)
        self.out = nn.Conv2d(channels, latent_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.adapter: SynthesisAdapter | None = None
        if isinstance(adapter, Mapping):
            adapter = SynthesisAdapter.from_document(dict(adapter), "fusion adapter")
        if adapter is not None:
            self.attach_adapter(adapter)

    def attach_adapter(self, adapter: SynthesisAdapter) -> None:
        """Give the module blocks inside ``g_s`` (beyond the paper); they travel in its weights and config."""
        self.adapter = adapter
        self.register_to_config(adapter=adapter)

    @property
    def scale(self) -> Tensor:
        return self.latent_scale[None, :, None, None]

    def normalize(self, latent: Tensor) -> Tensor:
        return latent / self.scale

    def fused_latent(self, y_hat: Tensor, pred_n: Tensor, y_hat_n: Tensor) -> Tensor:
        """The prediction back in latent units, as ``y_hat`` plus the predicted change: where the module
        changes nothing the result is ``y_hat`` itself, exactly, not ``y_hat / scale * scale``."""
        return y_hat + self.scale * (pred_n - y_hat_n)

    def encode_condition(self, y_hat_n: Tensor) -> Tensor:
        """Condition features from the normalised ``y_hat``; independent of time, so computed once."""
        h = self.cond_in(y_hat_n)
        for unit in self.cond_units:
            h = unit(h)
        return h

    def forward(self, y_t_n: Tensor, y_hat_n: Tensor, t_fraction: Tensor | float, cond: Tensor | None = None) -> Tensor:
        """Normalised prediction of the clean latent; ``cond`` may be precomputed (and broadcast over batch)."""
        if cond is None:
            cond = self.encode_condition(y_hat_n)
        batch = y_t_n.shape[0]
        if not torch.is_tensor(t_fraction):
            t_fraction = torch.full((batch,), float(t_fraction), device=y_t_n.device)
        emb = self.time_mlp(timestep_embedding(t_fraction.expand(batch), self.channels))
        h = self.merge(torch.cat([self.main_in(y_t_n), cond.expand(batch, -1, -1, -1)], dim=1))
        for unit in self.units:
            h = unit(h, emb)
        return y_hat_n + self.out(F.silu(self.out_norm(h)))
