"""Metric metadata lives in one registration: the scorer, the plots and bdrate read direction and label from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion.commands.bdrate import deltas
from dpfusion.errors import DPFusionError
from dpfusion.eval import plots
from dpfusion.eval.records import Curve
from dpfusion.eval.scoring import Scorer
from dpfusion.metrics.registry import metric_names, metric_spec, register_metric, unregister_metric


def mean_absolute_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().flatten(1).mean(1)


@pytest.fixture
def mae():
    register_metric("mae", label="MAE", lower_is_better=True, order=1)(mean_absolute_error)
    yield "mae"
    unregister_metric("mae")


def _curve(name: str, bpp: list[float], values: list[float]) -> Curve:
    return Curve(name, name, "curve", {"bpp": bpp, "mae": values})


def test_a_registered_metric_is_scored_labelled_and_ordered(mae):
    scorer = Scorer(["psnr", mae])
    assert scorer.info()[mae] == {"available": True, "level": "image", "better": "lower"}
    image = np.full((8, 8, 3), 100, np.uint8)
    values, errors = scorer.score(image, [image + 4])
    assert not errors and values[0][mae] == pytest.approx(4 / 255, abs=1e-6)
    assert plots.label(mae) == "MAE \u2193" and plots.label("psnr") == "PSNR [dB] \u2191"
    assert metric_names()[:3] == ("psnr", mae, "ms_ssim")  # order 1 sorts between psnr (0) and ms_ssim (1, by name)


def test_bdrate_follows_the_registered_direction(mae):
    anchor = _curve("anchor", [0.1, 0.2, 0.4, 0.8], [0.08, 0.06, 0.04, 0.02])
    test = _curve("test", [0.1, 0.2, 0.4, 0.8], [0.075, 0.055, 0.035, 0.015])  # lower error at every rate
    result = deltas(anchor, test, mae)
    assert result["better"] == "lower" and result["test_better_by_metric"] and result["bd_metric"] < 0
    assert result["bd_rate"] < 0


def test_registration_is_checked(mae):
    with pytest.raises(DPFusionError, match="already registered"):
        register_metric(mae, label="x", lower_is_better=True)(mean_absolute_error)
    with pytest.raises(DPFusionError, match="level must be one of"):
        register_metric("other", label="x", lower_is_better=True, level="video")(mean_absolute_error)
    with pytest.raises(DPFusionError, match="unknown metric 'nope'"):
        metric_spec("nope")
