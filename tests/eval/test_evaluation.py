"""``evaluate``: the whole evaluation without the command line gives what ``dpfusion eval`` writes."""

from __future__ import annotations

import json

import pytest

from dpfusion import ModelCache, Scorer, SweepSpec, evaluate
from dpfusion.cli import main
from dpfusion.errors import DPFusionError
from dpfusion.eval.sweep import list_images


@pytest.fixture(autouse=True)
def no_metric_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path / "empty-cache"))


def _models(eval_files) -> ModelCache:
    return ModelCache("gain-hyperprior", (0.0, 2.0), eval_files.checkpoint, eval_files.fusion)


def test_evaluate_writes_what_the_command_writes(eval_files, tmp_path) -> None:
    spec = SweepSpec(rates=(0.0, 2.0), taus=(0.0, 1.0), steps=(1,), seeds=(0,), baselines={"jpeg": (50,)})
    images = list_images(eval_files.data)
    results, written = evaluate(
        eval_files.data, images, spec, Scorer(["psnr"]), _models(eval_files), tmp_path / "lib.json", progress=False
    )
    assert {p.name for p in written} >= {"lib.json", "lib.csv"}
    assert len(results.per_image) == len(images) * (2 * 2 + 1)  # rates x taus, plus one JPEG quality
    argv = ["eval", eval_files.data, "-o", tmp_path / "cli.json", "--model", "gain-hyperprior"]
    argv += ["--checkpoint", eval_files.checkpoint, "--fusion", eval_files.fusion, "--rates", "0,2", "--taus", "0,1"]
    argv += ["--steps", "1", "--metrics", "psnr", "--baselines", "jpeg", "--jpeg-qualities", "50", "-q"]
    assert main([str(a) for a in argv]) == 0
    library, command = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("lib", "cli"))
    strip = {"decode_time", "encode_time"}

    def values(document: dict) -> list:
        return [{k: v for k, v in row.items() if k not in strip} for row in document["per_image"]]

    assert values(library) == values(command)
    assert library["settings"]["signatures"] == command["settings"]["signatures"]


def test_evaluate_refuses_what_it_cannot_do(eval_files, tmp_path) -> None:
    models = _models(eval_files)
    spec = SweepSpec(rates=(0.0,), taus=(1.0,))
    with pytest.raises(DPFusionError, match="-o must name a .json file"):
        evaluate(eval_files.data, list_images(eval_files.data), spec, Scorer(["psnr"]), models, tmp_path / "out.txt")
