"""Residual convolutions inside the frozen synthesis transform, faded in as tau falls.

The paper changes only the latent: ``g_s`` stays the MSE-trained decoder, whose smooth
textures cap how far LPIPS can fall. This goes beyond it: a small residual block after
the last layer at each intermediate resolution of ``g_s`` adds
``(1 - tau)^6 * A_i(h)``. At tau = 1 the blocks are skipped, so the base codec is kept
bit for bit; a tau map fades them per region (resized to each block's resolution).
``g_s`` itself is never modified.

The blocks may run in bfloat16 (``precision="bf16"``): on a CPU with AMX tiles or a GPU the block pair
then costs a fraction of its float32 time, while ``g_s``'s own layers, and so tau = 1, stay float32.
``precision="auto"`` picks bf16 exactly where the hardware computes it natively.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpfusion.configs import Configurable, register_to_config
from dpfusion.errors import DPFusionError

PRECISIONS = ("auto", "fp32", "bf16")
"""How the adapter's blocks compute; ``g_s`` always runs in float32. ``auto``: see :func:`resolve_precision`."""


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise DPFusionError(f"unknown adapter precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision


@cache
def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` computes bf16 convolutions natively: a CUDA GPU that supports bf16, or a CPU
    with AMX tiles. Only AMX was measured faster (docs/METHOD.md); an AVX2 CPU emulates bf16 and is slower."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool(amx and amx())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 where :func:`native_bf16` holds on ``device``, else fp32."""
    if check_precision(precision) == "auto":
        return "bf16" if native_bf16(device.type) else "fp32"
    return precision


def adapter_strength(tau: Tensor) -> Tensor:
    """Sixth power: the blocks act near tau = 0 only. Trained with an image MSE term, at small
    strengths they raise PSNR, so a slower fade let a larger tau lose PSNR to a smaller one (tau 0.8
    against 1 with the square, 0.5 against 0.3 at rate 0 with the fourth power; measured,
    docs/METHOD.md); at tau = 0.3 an eighth of them is left, so tau = 0 stays the most realistic."""
    return (1.0 - tau) ** 6


def adapter_positions(g_s: nn.Module, latent_channels: int) -> tuple[list[int], list[int]]:
    """Indices of ``g_s``'s children that end an intermediate resolution, and their channel counts.

    A child ends a resolution when the next child changes the spatial size; the last child
    (the image) is never one. Found by running a small zero latent through the children.
    """
    if not isinstance(g_s, nn.Sequential):
        raise DPFusionError(f"a synthesis adapter needs g_s to be an nn.Sequential, not {type(g_s).__name__}")
    children = list(g_s)
    with torch.no_grad():
        h = torch.zeros(1, latent_channels, 4, 4)
        shapes = []
        for child in children:
            h = child(h)
            shapes.append(tuple(h.shape[1:]))
    positions = [i for i in range(len(children) - 1) if shapes[i + 1][1:] != shapes[i][1:]]
    if not positions:
        raise DPFusionError("g_s has no intermediate resolution to adapt")
    return positions, [shapes[i][0] for i in positions]


class _Block(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.inner = nn.Conv2d(channels, hidden, 3, padding=1)
        self.outer = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, h: Tensor) -> Tensor:
        # In place: the inner output is not needed again, and at the finest resolution each copy is ~40 MB.
        return self.outer(F.leaky_relu(self.inner(h), 0.2, inplace=True))


class SynthesisAdapter(Configurable, nn.Module):
    """One residual block per intermediate resolution of a Sequential ``g_s``; starts as the identity."""

    config_kind = "dpfusion.synthesis-adapter"

    @register_to_config
    def __init__(self, positions: list[int], widths: list[int], hidden: int):
        super().__init__()
        if len(positions) != len(widths) or not positions:
            raise ValueError("positions and widths must be non-empty and of the same length")
        if hidden < 1:
            raise ValueError(f"hidden must be positive, got {hidden}")
        self.positions, self.widths, self.hidden = list(positions), list(widths), hidden
        self.blocks = nn.ModuleList(_Block(width, hidden) for width in widths)

    @classmethod
    def for_synthesis(cls, g_s: nn.Module, latent_channels: int, hidden: int) -> SynthesisAdapter:
        return cls(*adapter_positions(g_s, latent_channels), hidden)

    def check(self, g_s: nn.Module, latent_channels: int) -> None:
        """Refuse a ``g_s`` whose resolutions or widths differ from the ones this adapter was built for."""
        positions, widths = adapter_positions(g_s, latent_channels)
        if positions != self.positions or widths != self.widths:
            raise DPFusionError(
                f"synthesis adapter was built for layers {self.positions} of widths "
                f"{self.widths}, this g_s has {positions} of widths {widths}"
            )

    def forward(self, g_s: nn.Sequential, latent: Tensor, strength: Tensor | float, precision: str = "fp32") -> Tensor:
        """``g_s(latent)`` with each block's output added at ``strength`` (a number or a (B, 1, h, w) map), the
        blocks computed in ``precision`` (one of ``PRECISIONS``) and added to ``g_s``'s float32 activations."""
        blocks = dict(zip(self.config["positions"], self.blocks, strict=True))
        # At full strength (the number 1: tau = 0) without gradients each block's output is added in place, unscaled:
        # ``h + 1.0 * a`` is ``h + a`` bit for bit, and it saves two full-size tensors per block.
        whole = not torch.is_grad_enabled() and _is_one(strength)
        low = resolve_precision(precision, latent.device) == "bf16"
        # bf16 runs channels-last throughout: oneDNN's bf16 convolutions are several times slower on NCHW, and so
        # is adding a channels-last block output to an NCHW activation; g_s's own float32 layers cost the same
        h = latent.contiguous(memory_format=torch.channels_last) if low else latent
        for index, child in enumerate(g_s):
            h = child(h)
            if index in blocks:
                with torch.autocast(h.device.type, dtype=torch.bfloat16) if low else nullcontext():
                    delta = blocks[index](h)
                h = h.add_(delta) if whole else h + _resized(strength, h) * delta
        return h.contiguous()

    @torch.no_grad()
    def widened(self, hidden: int) -> SynthesisAdapter:
        """The same function with ``hidden`` inner channels: growing a trained adapter instead of
        retraining one. New inner filters start random, their outer weights zero, so they learn
        from the first step without changing the output."""
        if hidden < self.hidden:
            raise DPFusionError(f"an adapter of width {self.hidden} cannot shrink to {hidden}")
        wider = SynthesisAdapter(self.positions, self.widths, hidden)
        old = self.hidden
        for source, target in zip(self.blocks, wider.blocks, strict=True):
            target.inner.weight[:old].copy_(source.inner.weight)
            target.inner.bias[:old].copy_(source.inner.bias)
            target.outer.weight[:, :old].copy_(source.outer.weight)
            target.outer.bias.copy_(source.outer.bias)
        return wider.to(self.blocks[0].inner.weight)


def _is_one(strength: Tensor | float) -> bool:
    """A strength of the number 1 (a tensor is never asked: its value may sit on another device)."""
    return not torch.is_tensor(strength) and float(strength) == 1.0


def _resized(strength: Tensor | float, h: Tensor) -> Tensor | float:
    if not torch.is_tensor(strength) or strength.shape[-2:] in ((1, 1), h.shape[-2:]):
        return strength
    return F.interpolate(strength, size=h.shape[-2:], mode="bilinear", align_corners=False)
