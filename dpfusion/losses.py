"""Pluggable perceptual losses for training: name -> module mapping [0, 1] image pairs to a scalar."""

from __future__ import annotations

from torch import Tensor, nn

from dpfusion.errors import DPFusionError

PERCEPTUAL_LOSSES = ("lpips_alex", "lpips_vgg", "stlpips_alex", "dists", "mse")


class _MSE(nn.Module):
    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        return (x_hat - x).pow(2).mean()


class _MeanOf(nn.Module):
    """Wraps a per-image metric network into a batch-mean loss; its weights stay frozen."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()
        for param in self.net.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True) -> _MeanOf:
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        return self.net(x_hat, x).mean()


def build_perceptual_loss(name: str) -> nn.Module:
    """The paper uses standard LPIPS (AlexNet, v0.1); the others are drop-in alternatives."""
    if name == "mse":
        return _MSE()
    if name not in PERCEPTUAL_LOSSES:
        raise DPFusionError(f"unknown perceptual loss {name!r}; choose from {', '.join(PERCEPTUAL_LOSSES)}")
    from dpfusion.metrics.networks import build_network

    return _MeanOf(build_network(name))
