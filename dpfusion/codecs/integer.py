"""Exact integer evaluation of an entropy model's parameter network (Ballé et al., ICLR 2019).

The scales and means that the entropy coder needs come from a small network (``h_s``, and
for autoregressive codecs ``entropy_parameters``). Run in float, another thread count,
BLAS or GPU rounds differently, can pick another scale index and then decodes garbage
(CompressAI #279, #309). Here the same float weights are evaluated in fixed point:

- activations are integers ``a`` standing for ``a / 2**ACT_FRACTION_BITS``, saturated at
  ``2**ACT_BITS`` in magnitude, so every input, forged or not, stays in range;
- each output channel's weights are ``round(w * 2**e)`` with ``e`` chosen so that every
  product and partial sum of the layer is an integer below ``2**EXACT_BITS``; the
  convolution runs as ``unfold`` + ``matmul`` in float64, which is then exact in any
  summation order, on any device;
- after each layer the sum is divided by ``2**e`` and rounded half up (exact; a floor would
  bias every activation by half a step, which the next layer sums), and leaky ReLU
  multiplies by an integer slope and rounds the same way.

The float weights are untouched (same state dict, same fingerprint); only the way the
network is evaluated changes, so a bitstream written this way needs a decoder that
evaluates it the same way (container version 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpfusion.errors import DPFusionError

ACT_FRACTION_BITS = 10
"""Activation resolution 2**-10 (about 1e-3): far below what moves a scale index or a mean."""
ACT_BITS = 22
"""Activations saturate at 2**22 / 2**10 = 4096 in magnitude (scales above 256 all get the last
index anyway); the rest of the 52 bits goes to the weights, whose rounding dominates the error."""
EXACT_BITS = 52
"""float64 holds every integer below 2**53 exactly; one bit of headroom for the bias."""
SLOPE_BITS = 16
UNFOLD_BYTES = 1 << 25
"""Convolutions run over blocks of output rows whose unfolded input stays near 32 MB."""


def _exponents(weight: Tensor, bias: Tensor) -> Tensor:
    """Per output channel, the power of two that puts its largest weight (and its bias) just under
    the exact budget: all the channel's products sum to below 2**51, its bias is below 2**51."""
    terms = weight[0].numel()
    budget = EXACT_BITS - 1 - ACT_BITS - math.ceil(math.log2(terms))
    largest = weight.abs().flatten(1).amax(1)
    by_weight = budget - torch.ceil(torch.log2(largest.clamp_min(2.0**-40)))
    by_bias = EXACT_BITS - 1 - ACT_FRACTION_BITS - torch.ceil(torch.log2(bias.abs().clamp_min(2.0**-40)))
    return torch.minimum(by_weight, by_bias)


class IntegerConv:
    """A stride-1 convolution (a transposed one is rewritten as one) on integer activations."""

    def __init__(self, weight: Tensor, bias: Tensor | None, padding: tuple[int, int, int, int], dilate: int):
        weight = weight.detach().double().cpu()
        out_channels, _, self.kh, self.kw = weight.shape
        bias = torch.zeros(out_channels, dtype=torch.float64) if bias is None else bias.detach().double().cpu()
        scale = torch.pow(2.0, _exponents(weight, bias))
        self.weight = torch.round(weight * scale[:, None, None, None]).reshape(out_channels, -1)
        self.bias = torch.round(bias * scale * 2.0**ACT_FRACTION_BITS)[:, None]
        self.divisor = scale[:, None]
        self.padding = padding
        self.dilate = dilate

    def __call__(self, a: Tensor) -> Tensor:
        if self.dilate > 1:
            b, c, h, w = a.shape
            spread = a.new_zeros(b, c, (h - 1) * self.dilate + 1, (w - 1) * self.dilate + 1)
            spread[..., :: self.dilate, :: self.dilate] = a
            a = spread
        a = F.pad(a, self.padding)
        weight, bias, divisor = (t.to(a.device) for t in (self.weight, self.bias, self.divisor))
        out_h, out_w = a.shape[-2] - self.kh + 1, a.shape[-1] - self.kw + 1
        rows = max(1, UNFOLD_BYTES // (8 * weight.shape[1] * out_w))
        blocks = []
        for top in range(0, out_h, rows):
            bottom = min(out_h, top + rows)
            cols = F.unfold(a[..., top : bottom + self.kh - 1, :], (self.kh, self.kw))
            acc = weight @ cols + bias
            blocks.append(torch.floor(acc / divisor + 0.5).reshape(a.shape[0], -1, bottom - top, out_w))
        return saturate(torch.cat(blocks, dim=2))


def saturate(a: Tensor) -> Tensor:
    limit = 2.0**ACT_BITS
    return a.clamp_(-limit, limit)


def _conv_step(module: nn.Module) -> IntegerConv:
    kh, kw = module.kernel_size
    if module.dilation != (1, 1) or module.groups != 1 or not isinstance(module.padding, tuple):
        raise DPFusionError(f"cannot evaluate {module} in integers: dilation, groups or string padding")
    ph, pw = module.padding
    if isinstance(module, nn.ConvTranspose2d):
        sh, sw = module.stride
        oh, ow = module.output_padding
        if sh != sw:
            raise DPFusionError(f"cannot evaluate {module} in integers: unequal strides")
        flipped = module.weight.flip(-1, -2).transpose(0, 1)
        pad = (kw - 1 - pw, kw - 1 - pw + ow, kh - 1 - ph, kh - 1 - ph + oh)
        return IntegerConv(flipped, module.bias, pad, sh)
    if module.stride != (1, 1):
        raise DPFusionError(f"cannot evaluate {module} in integers: only stride-1 convolutions")
    weight = module.weight * module.mask if hasattr(module, "mask") else module.weight
    return IntegerConv(weight, module.bias, (pw, pw, ph, ph), 1)


class _IntegerLeakyReLU:
    def __init__(self, slope: float):
        self.slope = float(round(slope * 2**SLOPE_BITS))

    def __call__(self, a: Tensor) -> Tensor:
        return torch.where(a < 0, torch.floor(a * self.slope / 2**SLOPE_BITS + 0.5), a)


def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


def _step(module: nn.Module):
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        return _conv_step(module)
    if isinstance(module, nn.LeakyReLU):
        return _IntegerLeakyReLU(module.negative_slope)
    if isinstance(module, nn.ReLU):
        return torch.relu
    if isinstance(module, nn.PixelShuffle):
        return module  # a permutation: exact
    raise DPFusionError(f"cannot evaluate {type(module).__name__} in integers")


class IntegerNetwork:
    """The integer twin of a Sequential of convolutions, (leaky) ReLUs and pixel shuffles.

    Called with float32 input, it returns float32 output; the input is first rounded to the
    activation grid, so equal inputs give bit-identical outputs on every machine.
    """

    def __init__(self, network: nn.Module):
        self.steps = [_step(module) for module in _leaves(network)]

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        a = saturate(torch.round(x.double() * 2.0**ACT_FRACTION_BITS))
        for step in self.steps:
            a = step(a)
        return (a / 2.0**ACT_FRACTION_BITS).to(x.dtype)


class _IntegerForward:
    """``forward`` of an integerised network: integers whenever no gradient is asked for (entropy
    coding, latents for training the fusion module); the float network when training through it
    (the auxiliary encoder's rate term), where integer rounding would cut the gradient."""

    def __init__(self, network: nn.Module):
        self.network = network
        self.integer = IntegerNetwork(network)

    def __call__(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return type(self.network).forward(self.network, x)
        return self.integer(x)


def integerize(network: nn.Module) -> None:
    """Make ``network`` evaluate in exact integers from now on; its parameters stay as they are."""
    network.forward = _IntegerForward(network)


ENTROPY_PARAMETER_NETWORKS = ("h_s", "entropy_parameters")
"""What CompressAI codecs compute scales and means with: the hyper-synthesis, and for the
autoregressive ones the 1x1 network over hyper and context features."""


def integerize_entropy_parameters(model: nn.Module) -> None:
    """Integerise every entropy-parameter network the codec has (see ``ENTROPY_PARAMETER_NETWORKS``)."""
    for name in ENTROPY_PARAMETER_NETWORKS:
        network = getattr(model, name, None)
        if isinstance(network, nn.Module) and not isinstance(network.forward, _IntegerForward):
            integerize(network)
