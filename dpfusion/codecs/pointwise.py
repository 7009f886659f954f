"""The synthesis transform's 1x1 convolutions as plain matrix products, so tau = 1 pixels do not
depend on the thread count.

Measured on the default model (Kodak 768x512, torch 2.14 on CPU): oneDNN's 1x1 convolution,
which every GDN layer runs for its normalisation, splits its channel sum differently at 1
and at 2 threads (0.06-1.5 million of its outputs differ per layer, in the last bits), while
its 3x3 and transposed convolutions and a BLAS matrix product do not. The GDN
normalisation and any 1x1 ``nn.Conv2d`` inside ``g_s`` are therefore evaluated as
``weight @ x``, with the same weights and the same arithmetic otherwise; gradients are
unchanged in kind, so training through ``g_s`` works as before.
"""

from __future__ import annotations

import torch
from compressai.layers import GDN
from torch import Tensor, nn


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A 1x1 convolution of (B, C, H, W) by a (C_out, C) matrix, as one matrix product."""
    b, _, h, w = x.shape
    # One plain 2-D product per image: ``matmul`` of a 3-D input folds it into one product or not
    # depending on ``requires_grad`` of the weights, which changes the rounding.
    out = torch.stack([torch.mm(weight, image) for image in x.contiguous().reshape(b, x.shape[1], h * w)])
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(b, weight.shape[0], h, w)


class _GDNForward:
    """GDN / inverse GDN (Ballé et al.) with its normalisation as a matrix product."""

    def __init__(self, gdn: GDN):
        self.gdn = gdn

    def __call__(self, x: Tensor) -> Tensor:
        gdn, channels = self.gdn, x.shape[1]
        gamma = gdn.gamma_reparam(gdn.gamma).reshape(channels, channels)
        norm = pointwise(x * x, gamma, gdn.beta_reparam(gdn.beta))
        return x * (torch.sqrt(norm) if gdn.inverse else torch.rsqrt(norm))


class _PointwiseForward:
    def __init__(self, conv: nn.Conv2d):
        self.conv = conv

    def __call__(self, x: Tensor) -> Tensor:
        weight = self.conv.weight
        return pointwise(x, weight.reshape(weight.shape[0], -1), self.conv.bias)


def _is_plain_pointwise(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.groups == 1
        and module.padding in ((0, 0), "valid")
    )


def use_matrix_products(network: nn.Module) -> None:
    """Route every GDN and plain 1x1 convolution of ``network`` through ``pointwise``; parameters untouched."""
    for module in network.modules():
        if type(module) is GDN and not isinstance(module.forward, _GDNForward):
            module.forward = _GDNForward(module)
        elif _is_plain_pointwise(module) and not isinstance(module.forward, _PointwiseForward):
            module.forward = _PointwiseForward(module)
