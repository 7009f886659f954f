"""The page's numbers: real values when a metric can run, the reason when it cannot."""

from __future__ import annotations

from dpfusion.imageio import to_tensor
from dpfusion.metrics.psnr import psnr
from dpfusion.serve import scoring
from tests.conftest import make_image


def test_missing_weights_and_small_images_are_reported_not_scored(monkeypatch) -> None:
    monkeypatch.setattr(scoring, "available_metrics", lambda: {"lpips_alex": "lpips weights not prepared"})
    shown, reference = make_image(64, 64, seed=1), make_image(64, 64, seed=2)
    scores = scoring.score(shown, reference)
    assert scores["psnr"]["value"] == float(psnr(to_tensor(shown), to_tensor(reference))[0])
    assert scores["lpips_alex"] == {"unavailable": "lpips weights not prepared"}
    assert "at least 161x161" in scores["ms_ssim"]["unavailable"]
    same = scoring.score(shown, shown.copy())
    assert same["psnr"] == {"identical": True} and same["ms_ssim"]["unavailable"] == scores["ms_ssim"]["unavailable"]
