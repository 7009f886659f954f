"""Evaluation with the deep full-reference networks: one frozen instance per network and cache folder."""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from dpfusion.metrics._images import check_pair, quantize
from dpfusion.metrics.networks import build_network
from dpfusion.metrics.weights import cache_dir


@functools.cache
def _network(name: str, _folder: str) -> nn.Module:
    return build_network(name)


def shared_network(name: str) -> nn.Module:
    """The frozen instance of network ``name`` that every score in this process uses."""
    return _network(name, str(cache_dir()))


def score(name: str, x: Tensor, y: Tensor) -> Tensor:
    """(B,) values of network ``name`` on the 8-bit rounding of (B, 3, H, W) images in [0, 1]."""
    check_pair(x, y, name)
    model = shared_network(name).to(x.device)
    with torch.inference_mode():
        return model(quantize(x).float(), quantize(y).float()).cpu()
