"""`dpfusion calibrate` end to end: the embedded model's module calibrated on a few tiny photos."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from dpfusion.cli import main
from dpfusion.codecs.loading import DEFAULT_DIR
from dpfusion.eval.calibration import CURVES_NAME, BlendCurve, even_weights
from dpfusion.fusion.checkpoint import read_manifest


def test_calibrate_stores_a_floored_dial_and_its_curves(tmp_path, metric_weights, capsys):
    module = tmp_path / "module"
    module.mkdir()
    for name in ("fusion.json", "fusion.safetensors"):
        shutil.copy(DEFAULT_DIR / name, module / name)
    photos = tmp_path / "validation"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        smooth = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        Image.fromarray(smooth).save(photos / f"p{i}.png")
    assert main(["calibrate", str(photos), "--fusion", str(module), "--rates", "0", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "rate 0: w(tau = 0.1, 0.3, 0.5, 0.7, 0.9)" in out and "PSNR floor w >= " in out
    (stored,) = json.loads((module / CURVES_NAME).read_text())
    assert stored["images"] == 2 and 0.0 <= stored["psnr_floor"] <= 1.0
    curve = BlendCurve(0.0, tuple(stored["weights"]), tuple(stored["lpips_alex"]), tuple(stored["psnr"]), 2,
                       psnr_floor=stored["psnr_floor"])  # fmt: skip
    weights = read_manifest(module)[0].dial.weights[0.0]
    assert weights == even_weights(curve) and weights[0] == 1.0 and weights[-1] == 0.0
