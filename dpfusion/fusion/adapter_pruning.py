"""Narrowing a trained synthesis adapter: keep the inner channels that carry its output, refit the rest.

The adapter's blocks are most of a tau = 0 decode's cost on a CPU (docs/METHOD.md, "A cheaper
adapter"). Training a narrow adapter from scratch would throw away what the wide one learned,
so it is pruned instead, as in channel pruning with least-squares reconstruction (He, Zhang and
Sun, ICCV 2017): on inputs the trained adapter really sees, each block keeps the inner channels
whose share of the block's output carries the most energy, and its outer convolution is refitted
by ridge regression so that the kept channels reproduce the whole block's output as closely as
a linear map of them can. Fine-tuning then starts from there, not from zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter

RIDGE = 1e-4
"""Ridge term of the refit, relative to the mean feature energy: keeps a near-singular fit bounded."""
FIT_PIXELS = 40_000
"""Positions per block that the refit samples: plenty for at most a few thousand unknowns."""


@torch.no_grad()
def block_inputs(adapter: SynthesisAdapter, g_s: nn.Sequential, latents: Sequence[Tensor]) -> list[list[Tensor]]:
    """For each block, what reaches it at full strength (tau = 0) for each latent."""
    inputs: list[list[Tensor]] = [[] for _ in adapter.blocks]
    blocks = dict(zip(adapter.positions, range(len(adapter.blocks)), strict=True))
    for latent in latents:
        h = latent
        for index, child in enumerate(g_s):
            h = child(h)
            if index in blocks:
                inputs[blocks[index]].append(h)
                h = h + adapter.blocks[blocks[index]](h)
    return inputs


def _inner(block: nn.Module, h: Tensor) -> Tensor:
    return F.leaky_relu(block.inner(h), 0.2)


def strongest_channels(block: nn.Module, hiddens: Sequence[Tensor], keep: int) -> Tensor:
    """The ``keep`` inner channels with the most output energy: mean activation power times outer filter power."""
    power = torch.stack([hidden.pow(2).mean(dim=(0, 2, 3)) for hidden in hiddens]).mean(0)
    filters = block.outer.weight.pow(2).sum(dim=(0, 2, 3))
    return torch.argsort(power * filters, descending=True)[:keep].sort().values


def _sampled_features(
    block: nn.Module, hiddens: Sequence[Tensor], kept: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """3x3 neighbourhoods of the kept activations (N, k*9 + 1, with a bias column) and the block's output (N, C)."""
    per_input = max(1, FIT_PIXELS // len(hiddens))
    features, targets = [], []
    for hidden in hiddens:
        patches = F.unfold(hidden[:, kept], 3, padding=1).transpose(1, 2).flatten(0, 1)
        output = block.outer(hidden).flatten(2).transpose(1, 2).flatten(0, 1)
        pick = torch.randperm(patches.shape[0], generator=generator)[:per_input].to(hidden.device)
        features.append(patches[pick])
        targets.append(output[pick])
    x = torch.cat(features)
    return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1), torch.cat(targets)


def refit_outer(
    block: nn.Module, target: nn.Module, hiddens: Sequence[Tensor], kept: Tensor, generator: torch.Generator
) -> float:
    """Set ``target.outer`` to the ridge fit of ``block``'s output from the kept channels of its inner activations
    ``hiddens``; returns the fit's R^2."""
    x, y = _sampled_features(block, hiddens, kept, generator)
    x, y = x.double(), y.double()
    gram = x.T @ x
    gram += RIDGE * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    solution = torch.linalg.solve(gram, x.T @ y)
    weights, bias = solution[:-1], solution[-1]
    channels, k = target.outer.weight.shape[:2]
    target.outer.weight.copy_(weights.T.reshape(channels, k, 3, 3).float())
    target.outer.bias.copy_(bias.float())
    residual = (y - x @ solution).pow(2).sum()
    return float(1.0 - residual / (y - y.mean(0)).pow(2).sum().clamp_min(1e-12))


@torch.no_grad()
def narrowed(
    adapter: SynthesisAdapter, g_s: nn.Sequential, latents: Sequence[Tensor], hidden: int, seed: int = 0
) -> tuple[SynthesisAdapter, list[float]]:
    """The adapter with ``hidden`` inner channels per block, and each block's refit R^2 on ``latents``."""
    if not 1 <= hidden <= adapter.hidden:
        raise DPFusionError(f"an adapter of width {adapter.hidden} cannot be narrowed to {hidden}")
    if not latents:
        raise DPFusionError("narrowing an adapter needs some latents to fit on")
    reference = adapter.blocks[0].inner.weight
    latents = [latent.to(reference) for latent in latents]
    narrow = SynthesisAdapter(adapter.positions, adapter.widths, hidden).to(reference)
    generator = torch.Generator().manual_seed(seed)
    fits = []
    for block, target, inputs in zip(adapter.blocks, narrow.blocks, block_inputs(adapter, g_s, latents), strict=True):
        hiddens = [_inner(block, h) for h in inputs]
        kept = strongest_channels(block, hiddens, hidden)
        target.inner.weight.copy_(block.inner.weight[kept])
        target.inner.bias.copy_(block.inner.bias[kept])
        fits.append(refit_outer(block, target, hiddens, kept, generator))
    return narrow, fits
