"""Image-quality metrics, each registered (``metrics.registry``): every number dpfusion reports comes from one.

All metrics take float tensors (B, 3, H, W) with values in [0, 1] and score their 8-bit
rounding. Full-reference metrics (level ``image``) are called ``f(x, y)`` and no-reference ones
(``noref``) ``f(x)``, both returning (B,) per-image values; set metrics (``set``) are called
``f(real, fake)`` on two image sets and return one float. Weights come from the local cache
built by ``dpfusion weights prepare``; ``available_metrics()`` says which metrics can run.
"""

from __future__ import annotations

from functools import partial

from dpfusion.metrics.dists import dists
from dpfusion.metrics.fid import fid
from dpfusion.metrics.kid import kid
from dpfusion.metrics.lpips import lpips
from dpfusion.metrics.ms_ssim import ms_ssim
from dpfusion.metrics.niqe import niqe
from dpfusion.metrics.psnr import psnr
from dpfusion.metrics.registry import METRIC_SPECS, METRICS, MetricSpec, metric_spec, register_metric
from dpfusion.metrics.stlpips import stlpips
from dpfusion.metrics.weights import available_metrics

_BUILT_IN = (  # name, function, label, lower is better, level, perceptual
    ("psnr", psnr, "PSNR [dB]", False, "image", False),
    ("ms_ssim", ms_ssim, "MS-SSIM", False, "image", False),
    ("lpips_alex", partial(lpips, net="alex"), "LPIPS (alex)", True, "image", True),
    ("lpips_vgg", partial(lpips, net="vgg"), "LPIPS (vgg)", True, "image", True),
    ("stlpips_alex", partial(stlpips, net="alex"), "ST-LPIPS (alex)", True, "image", True),
    ("stlpips_vgg", partial(stlpips, net="vgg"), "ST-LPIPS (vgg)", True, "image", True),
    ("dists", dists, "DISTS", True, "image", True),
    ("fid", fid, "FID (256 patches)", True, "set", True),
    ("kid", kid, "KID (256 patches)", True, "set", True),
    ("niqe", niqe, "NIQE", True, "noref", True),
)
for _order, (_name, _function, _label, _lower, _level, _perceptual) in enumerate(_BUILT_IN):
    register_metric(_name, label=_label, lower_is_better=_lower, level=_level, order=_order, perceptual=_perceptual)(
        _function
    )

__all__ = ["METRICS", "METRIC_SPECS", "MetricSpec", "available_metrics", "metric_spec", "register_metric"]
