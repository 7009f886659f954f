"""``ModelCache``: the models a sweep decodes with, built from typed arguments (no argparse)."""

from __future__ import annotations

import pytest

from dpfusion.errors import DPFusionError
from dpfusion.eval.models import ModelCache, path_for


def test_rate_templates_name_one_file_per_rate():
    assert path_for("runs/q{rate}/fusion", 3.0) == "runs/q3/fusion"
    assert path_for("runs/q{rate}", 0.5) == "runs/q0.5"
    assert path_for("fixed/fusion", 2.0) == "fixed/fusion" and path_for(None, 1.0) is None


def test_a_fixed_rate_codec_needs_its_rates():
    with pytest.raises(DPFusionError, match="fixed-rate: give its qualities with --rates"):
        ModelCache("bmshj2018-hyperprior")


def test_a_variable_rate_codec_is_one_model_for_every_rate(eval_files):
    cache = ModelCache("gain-hyperprior", None, eval_files.checkpoint, eval_files.fusion)
    assert cache.variable and cache.first.fusion is not None
    assert cache.rates() == tuple(float(r) for r in range(cache.first.codec.model.num_rates))
    assert cache(0.0) is cache(2.0) is cache.first
    chosen = ModelCache("gain-hyperprior", (0.0, 1.5), eval_files.checkpoint, eval_files.fusion, tau_mode="linear")
    assert chosen.rates() == (0.0, 1.5) and chosen.first.tau_mode == "linear"
    with pytest.raises(DPFusionError, match="outside"):
        ModelCache("gain-hyperprior", (0.0, 99.0), eval_files.checkpoint).rates()  # refused before any work
