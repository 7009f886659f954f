"""The deep full-reference metrics as plain ``nn.Module``s: LPIPS, ST-LPIPS and DISTS.

Why our own definitions instead of the ``lpips`` / ``DISTS_pytorch`` / ``stlpips_pytorch``
packages: those build their backbones through ``torchvision.models.*(pretrained=True)``,
which downloads ImageNet weights (unreachable here) or needs files planted in
``$TORCH_HOME``; ``stlpips_pytorch`` also imports IPython and torchsummary. The layer
stacks below reproduce torchvision's and the papers' layouts index for index, so the
converted state dicts from the weights cache (``dpfusion weights prepare``) load with
``strict=True``; the calibration tests check the numbers against the published ones.

Every network maps two (B, 3, H, W) images in [0, 1] to (B,) distances, is frozen and in
eval mode, and is differentiable with respect to its inputs, so training can use it as a loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpfusion.errors import DPFusionError
from dpfusion.metrics.weights import load_tensors, require

NETWORKS = ("lpips_alex", "lpips_vgg", "stlpips_alex", "stlpips_vgg", "dists")

_VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG16_CHANNELS = (64, 128, 256, 512, 512)
_ALEX_CHANNELS = (64, 192, 384, 256, 256)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TappedSequential(nn.Sequential):
    """A layer stack that returns the outputs of the layers at ``taps`` (it stops after the last one)."""

    def __init__(self, layers: Sequence[nn.Module], taps: Sequence[int]):
        super().__init__(*layers[: max(taps) + 1])
        self.taps = tuple(taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for index, layer in enumerate(self):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


class L2Pool(nn.Module):
    """DISTS' replacement for max pooling: sqrt of a Hann-weighted local mean of squares, stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        hann = torch.hann_window(5, periodic=False, dtype=torch.float64)[1:-1]
        kernel = (hann[:, None] * hann[None, :]).float()
        kernel = (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone()
        self.register_buffer("filter", kernel, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class BlurPool(nn.Module):
    """ST-LPIPS' anti-aliased stride-2 downsampling: reflect-pad 2, [1 2 1] binomial blur (weights from the file)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", torch.empty(channels, 1, 3, 3))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _vgg16_layers(pool: Callable[[int], list[nn.Module]]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_CFG:
        if item == "M":
            layers += pool(channels)
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return layers


def _alexnet() -> TappedSequential:
    """torchvision's AlexNet ``features``, tapped after each ReLU (relu1..relu5)."""
    layers = [
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
    ]  # fmt: skip
    return TappedSequential(layers, (1, 4, 7, 9, 11))


def _st_alexnet() -> TappedSequential:
    """ST-LPIPS' shift-tolerant AlexNet: stride-1 conv and max pooling, each followed by a BlurPool."""
    layers = [
        nn.Conv2d(3, 64, 11, stride=1, padding=2), BlurPool(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 1), BlurPool(64), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 1), BlurPool(192), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
    ]  # fmt: skip
    return TappedSequential(layers, (2, 6, 10, 12, 14))


def _vgg16(pool: Callable[[int], list[nn.Module]], taps: Sequence[int]) -> TappedSequential:
    return TappedSequential(_vgg16_layers(pool), taps)


def _max_pool(_channels: int) -> list[nn.Module]:
    return [nn.MaxPool2d(2, 2)]


def imagenet_normalized(x: Tensor) -> Tensor:
    """``x`` in [0, 1] as the ImageNet-trained VGG16 saw its inputs (DISTS and training losses use it so)."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def pretrained_vgg16(taps: Sequence[int]) -> TappedSequential:
    """Torchvision's max-pooled VGG16 up to its last tap, with the cached ImageNet weights, frozen.

    For training losses that need the backbone's features without LPIPS' heads; feed it
    :func:`imagenet_normalized` images. Raises DPFusionError when the weights are not prepared.
    """
    require("lpips_vgg")
    features = _vgg16(_max_pool, taps)
    state = {
        key.removeprefix("features."): value
        for key, value in load_tensors("vgg16").items()
        if int(key.split(".")[1]) < len(features)
    }
    features.load_state_dict(state, strict=True)
    return features.eval().requires_grad_(False)


def _unit(x: Tensor, eps: float = 1e-10) -> Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPSNet(nn.Module):
    """LPIPS v0.1: unit-normalised backbone activations, squared differences, learned 1x1 heads, spatial mean."""

    def __init__(self, features: TappedSequential, channels: Sequence[int]):
        super().__init__()
        self.features = features
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        both = self.embed(torch.cat([x, y]))
        return self.compare([f.chunk(2)[0] for f in both], [f.chunk(2)[1] for f in both])

    def embed(self, x: Tensor) -> list[Tensor]:
        """The unit-normalised activations of each tapped layer: kept by a caller that scores many images
        against one, so the one is embedded once."""
        return [_unit(f) for f in self.features((x * 2 - 1 - self.shift) / self.scale)]

    def compare(self, ex: list[Tensor], ey: list[Tensor]) -> Tensor:
        """(B,) distances between two embeddings (``ey`` may have batch 1 and broadcast)."""
        total = ex[0].new_zeros(ex[0].shape[0])
        for lin, fx, fy in zip(self.lins, ex, ey, strict=True):
            total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


class DISTSNet(nn.Module):
    """DISTS (Ding et al. 2020): structure and texture similarity of VGG16 (L2-pooled) feature statistics."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16(lambda c: [L2Pool(c)], (3, 8, 15, 22, 29))
        self.chns = (3, *_VGG16_CHANNELS)
        self.alpha = nn.Parameter(torch.zeros(1, sum(self.chns), 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, sum(self.chns), 1, 1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        both = torch.cat([x, y])
        feats = [both, *self.features(imagenet_normalized(both))]
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, self.chns, dim=1)
        betas = torch.split(self.beta / w_sum, self.chns, dim=1)
        c1 = c2 = 1e-6
        similarity = x.new_zeros(x.shape[0])
        for f, alpha, beta in zip(feats, alphas, betas, strict=True):
            fx, fy = f.chunk(2)
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            vx = ((fx - mx) ** 2).mean((2, 3), keepdim=True)
            vy = ((fy - my) ** 2).mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            structure = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
            texture = (2 * cov + c2) / (vx + vy + c2)
            similarity = similarity + (alpha * structure + beta * texture).sum(dim=(1, 2, 3))
        return 1 - similarity


def _build(name: str) -> tuple[nn.Module, dict[str, Tensor]]:
    if name == "lpips_alex":
        return LPIPSNet(_alexnet(), _ALEX_CHANNELS), {**load_tensors("alexnet"), **load_tensors("lpips_alex")}
    if name == "lpips_vgg":
        net = LPIPSNet(_vgg16(_max_pool, (3, 8, 15, 22, 29)), _VGG16_CHANNELS)
        return net, {**load_tensors("vgg16"), **load_tensors("lpips_vgg")}
    if name == "stlpips_alex":
        return LPIPSNet(_st_alexnet(), _ALEX_CHANNELS), load_tensors("stlpips_alex")
    if name == "stlpips_vgg":
        features = _vgg16(lambda c: [nn.MaxPool2d(2, 1), BlurPool(c)], (3, 9, 17, 25, 33))
        return LPIPSNet(features, _VGG16_CHANNELS), load_tensors("stlpips_vgg")
    if name == "dists":
        return DISTSNet(), {**load_tensors("vgg16"), **load_tensors("dists")}
    raise DPFusionError(f"unknown metric network {name!r}; choose from {', '.join(NETWORKS)}")


def build_network(name: str) -> nn.Module:
    """A fresh frozen metric network (one of ``NETWORKS``) with its weights from the cache.

    Raises DPFusionError naming ``dpfusion weights prepare`` when the weights are missing.
    """
    if name in NETWORKS:
        require(name)
    net, state = _build(name)
    net.load_state_dict(state, strict=True)
    net.eval()
    for param in net.parameters():
        param.requires_grad_(False)
    return net
