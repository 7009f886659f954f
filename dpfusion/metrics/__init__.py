"""Image-quality metrics, each named: every number dpfusion reports comes from an entry of ``METRICS``.

All metrics take float tensors (B, 3, H, W) with values in [0, 1] and score their 8-bit
rounding. Full-reference metrics are called ``f(x, y)`` and no-reference ones (``NO_REFERENCE``)
``f(x)``, both returning (B,) per-image values; set metrics (``SET_METRICS``) are called
``f(real, fake)`` on two image sets and return one float. Weights come from the local cache
built by ``dpfusion weights prepare``; ``available_metrics()`` says which metrics can run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from dpfusion.metrics.dists import dists
from dpfusion.metrics.fid import fid
from dpfusion.metrics.kid import kid
from dpfusion.metrics.lpips import lpips
from dpfusion.metrics.ms_ssim import ms_ssim
from dpfusion.metrics.niqe import niqe
from dpfusion.metrics.psnr import psnr
from dpfusion.metrics.stlpips import stlpips
from dpfusion.metrics.weights import available_metrics

METRICS: dict[str, Callable] = {
    "psnr": psnr,
    "ms_ssim": ms_ssim,
    "lpips_alex": partial(lpips, net="alex"),
    "lpips_vgg": partial(lpips, net="vgg"),
    "stlpips_alex": partial(stlpips, net="alex"),
    "stlpips_vgg": partial(stlpips, net="vgg"),
    "dists": dists,
    "niqe": niqe,
    "fid": fid,
    "kid": kid,
}
NO_REFERENCE = frozenset({"niqe"})
SET_METRICS = frozenset({"fid", "kid"})

__all__ = ["METRICS", "NO_REFERENCE", "SET_METRICS", "available_metrics"]
