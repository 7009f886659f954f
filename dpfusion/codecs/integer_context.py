"""The autoregressive codecs' coding loops (mbt2018, cheng2020) with an exact integer context model.

CompressAI's loops compute the masked 5x5 context convolution in float inside the loop, so
another machine can round it differently and pick another scale index. These loops do what
CompressAI's ``_compress_ar`` / ``_decompress_ar`` do, position by position in raster order,
but with the context convolution and the entropy-parameter network in exact integers
(``codecs.integer``): the means are then fixed-point numbers, ``y_hat = symbol + mean`` is
the same everywhere, and so is every context computed from it.
"""

from __future__ import annotations

import functools

import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from torch import Tensor, nn

from dpfusion.codecs.integer import ACT_FRACTION_BITS, IntegerConv, integerize_entropy_parameters, saturate


class _IntegerContext:
    """The masked context convolution on one (1, M, k, k) crop, without padding, in integers."""

    def __init__(self, masked: nn.Conv2d):
        self.conv = IntegerConv(masked.weight * masked.mask, masked.bias, (0, 0, 0, 0), 1)

    def __call__(self, crop: Tensor) -> Tensor:
        a = saturate(torch.round(crop.double() * 2.0**ACT_FRACTION_BITS))
        return (self.conv(a) / 2.0**ACT_FRACTION_BITS).to(crop.dtype)


def _parameters(model: nn.Module, context: _IntegerContext, y_hat: Tensor, params: Tensor, h: int, w: int, k: int):
    """Scale indexes and means at one latent position, from what is decoded above and to the left."""
    ctx = context(y_hat[:, :, h : h + k, w : w + k])
    gaussian = model.entropy_parameters(torch.cat((params[:, :, h : h + 1, w : w + 1], ctx), dim=1))
    scales, means = gaussian.chunk(2, 1)
    return model.gaussian_conditional.build_indexes(scales), means


def _tables(model: nn.Module) -> tuple[list, list, list]:
    gc = model.gaussian_conditional
    return gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()


def compress_ar(model: nn.Module, y_hat: Tensor, params: Tensor, height: int, width: int, k: int, pad: int) -> bytes:
    """Code one padded latent (1, M, h + 2 pad, w + 2 pad); quantises it in place as it goes."""
    context = _IntegerContext(model.context_prediction)
    symbols: list[int] = []
    indexes: list[int] = []
    for h in range(height):
        for w in range(width):
            index, means = _parameters(model, context, y_hat, params, h, w, k)
            here = y_hat[:, :, h + pad : h + pad + 1, w + pad : w + pad + 1]
            q = model.gaussian_conditional.quantize(here, "symbols", means)
            here.copy_(q + means)
            symbols.extend(q.reshape(-1).tolist())
            indexes.extend(index.reshape(-1).tolist())
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(symbols, indexes, *_tables(model))
    return encoder.flush()


def decompress_ar(
    model: nn.Module, string: bytes, y_hat: Tensor, params: Tensor, height: int, width: int, k: int, pad: int
) -> None:
    """Decode one string into the zero-initialised padded latent ``y_hat``, in place."""
    context = _IntegerContext(model.context_prediction)
    tables = _tables(model)
    decoder = RansDecoder()
    decoder.set_stream(string)
    for h in range(height):
        for w in range(width):
            index, means = _parameters(model, context, y_hat, params, h, w, k)
            values = decoder.decode_stream(index.reshape(-1).tolist(), *tables)
            symbols = torch.tensor(values, dtype=means.dtype, device=means.device).reshape(means.shape)
            y_hat[:, :, h + pad : h + pad + 1, w + pad : w + pad + 1] = symbols + means


def install_integer_context(model: nn.Module) -> None:
    """Route the codec's coding loops through the integer ones above (only models that have them)."""
    if hasattr(model, "context_prediction") and hasattr(model, "_compress_ar"):
        model._compress_ar = functools.partial(compress_ar, model)
        model._decompress_ar = functools.partial(decompress_ar, model)


def integerize_codec(model: nn.Module) -> None:
    """Everything that gives the entropy coder its scales and means, in exact integers."""
    integerize_entropy_parameters(model)
    install_integer_context(model)
