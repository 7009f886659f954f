"""The sweep measures real bitstreams, decodes all tau of a bitstream in one call, and resumes without redoing work."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dpfusion import api
from dpfusion.errors import DPFusionError
from dpfusion.eval import baselines, setlevel
from dpfusion.eval import sweep as sweep_module
from dpfusion.eval.aggregate import build_results
from dpfusion.eval.journal import Journal, read_journal
from dpfusion.eval.scoring import Scorer
from dpfusion.eval.sweep import ImageStore, Sweep, SweepSpec, list_images
from dpfusion.imageio import load_image, to_tensor
from dpfusion.metrics import METRICS
from tests.decoding import decode_base

TAUS = (0.0, 0.5, 1.0)


class CountingModel:
    """A Model that counts its encodes and batched decodes, and can be told to die after some decodes."""

    def __init__(self, model: api.Model, die_after: int | None = None):
        self.model = model
        self.compress_calls = 0
        self.decode_calls: list[int] = []  # number of tau per call
        self.die_after = die_after

    def __getattr__(self, name):
        return getattr(self.model, name)

    def compress(self, *args, **kwargs):
        self.compress_calls += 1
        return self.model.compress(*args, **kwargs)

    def decompress_many(self, data, taus, steps, seed):
        if self.die_after is not None and len(self.decode_calls) >= self.die_after:
            raise KeyboardInterrupt
        self.decode_calls.append(len(taus))
        return self.model.decompress_many(data, taus, steps=steps, seed=seed)


@pytest.fixture
def no_metric_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path / "empty-cache"))


@pytest.fixture
def counting(eval_files):
    def make(die_after: int | None = None) -> CountingModel:
        model = api.load("gain-hyperprior", 0.0, eval_files.checkpoint, eval_files.fusion, image_dial=False)
        return CountingModel(model, die_after)

    return make


def _sweep(eval_files, tmp_path, model, metrics=("psnr",), name="results", **spec) -> Sweep:
    spec = SweepSpec(**{"rates": (0.0, 2.0), "taus": TAUS, "steps": (3,), "seeds": (0,), **spec})
    journal = Journal(tmp_path / f"{name}.journal.jsonl")
    return Sweep(
        list_images(eval_files.data),
        spec,
        Scorer(list(metrics)),
        journal,
        lambda rate: model,
        ImageStore(tmp_path / f"{name}.images"),
        progress=False,
    )


def test_real_bitstreams_one_batched_decode_and_exact_tau1(eval_files, tmp_path, counting, no_metric_weights):
    model = counting()
    sweep = _sweep(eval_files, tmp_path, model, baselines={"jpeg": (30, 80)})
    records = sweep.run()
    learned = [r for r in records if r.kind == "dpfusion"]
    assert len(learned) == 2 * 2 and model.compress_calls == 4
    assert model.decode_calls == [len(TAUS)] * 4  # every tau of one bitstream in one call
    for record in learned:
        image = load_image(eval_files.data / record.image)
        data = model.model.compress(image, quality=record.rate)
        pixels = image.shape[0] * image.shape[1]
        assert record.bytes == len(data) and record.pixels == pixels
        assert record.bpp == 8 * len(data) / pixels
        base = decode_base(data, model.codec.with_quality(record.rate)).image
        base_psnr = float(METRICS["psnr"](to_tensor(base), to_tensor(image))[0])
        assert record.values["1"]["psnr"] == base_psnr  # tau = 1 is the base codec, bit for bit
        assert record.values["0"]["psnr"] != base_psnr  # the fusion module is really in the loop
    for record in (r for r in records if r.kind == "jpeg"):
        image = load_image(eval_files.data / record.image)
        data = baselines.BASELINES["jpeg"].encode(image, record.quality)
        assert record.bpp == 8 * len(data) / (image.shape[0] * image.shape[1])
        decoded = baselines.decode(data)
        assert record.values["1"]["psnr"] == float(METRICS["psnr"](to_tensor(decoded), to_tensor(image))[0])


def test_resume_skips_done_units_and_matches_an_uninterrupted_run(
    eval_files, tmp_path, counting, monkeypatch, no_metric_weights
):
    ticks = iter(range(10**6))
    monkeypatch.setattr(sweep_module, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    whole = _sweep(eval_files, tmp_path / "a", counting(), baselines={"jpeg": (50,)})
    expected = whole.run()

    ticks = iter(range(10**6))
    dying = counting(die_after=3)
    with pytest.raises(KeyboardInterrupt):
        _sweep(eval_files, tmp_path / "b", dying, baselines={"jpeg": (50,)}).run()
    assert len(read_journal(tmp_path / "b" / "results.journal.jsonl")) == 3 + 1  # 3 decodes + a's JPEG
    ticks = iter(range(10**6))
    resumed_model = counting()
    resumed = _sweep(eval_files, tmp_path / "b", resumed_model, baselines={"jpeg": (50,)})
    got = resumed.run()
    assert len(resumed_model.decode_calls) == 4 - 3  # only the missing unit is decoded again
    assert resumed_model.compress_calls == 1
    settings = {"rates": [0.0, 2.0], "taus": list(TAUS), "steps": [3], "seeds": [0]}
    info = whole.scorer.info()
    assert got == expected  # the clock is fake, so even the times agree
    same = [json.dumps(build_results(records, settings, info).to_dict()) for records in (got, expected)]
    assert same[0] == same[1]


def test_torn_journal_line_is_redone(eval_files, tmp_path, counting, no_metric_weights):
    first = _sweep(eval_files, tmp_path, counting())
    first.run()
    path = tmp_path / "results.journal.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the process died while writing the last record
    model = counting()
    again = _sweep(eval_files, tmp_path, model)
    again.run()
    assert len(model.decode_calls) == 1
    assert path.read_bytes().count(b"\n") == 4


def test_garbage_journal_is_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('not json\n{"key": "a"}\n')
    with pytest.raises(DPFusionError, match="not a journal line"):
        Journal(path)


def test_changed_image_is_recomputed(eval_files, tmp_path, counting, no_metric_weights, tiny_image_factory):
    from PIL import Image

    _sweep(eval_files, tmp_path, counting()).run()
    Image.fromarray(tiny_image_factory(40, 56, seed=7)).save(eval_files.data / "a.png")
    model = counting()
    _sweep(eval_files, tmp_path, model).run()
    assert len(model.decode_calls) == 2  # a.png at both rates; b.png untouched


def test_metric_refusing_an_image_is_reported_not_dropped(eval_files, tmp_path, counting, no_metric_weights):
    sweep = _sweep(eval_files, tmp_path, counting(), metrics=("psnr", "ms_ssim", "lpips_alex"), rates=(0.0,))
    records = sweep.run()
    doc = build_results(records, {"rates": [0.0], "taus": list(TAUS)}, sweep.scorer.info())
    assert doc.metrics["lpips_alex"]["available"] is False
    assert "dpfusion weights prepare" in doc.to_dict()["unavailable_metrics"]["lpips_alex"]
    assert doc.metrics["ms_ssim"]["available"] is True
    assert any("161" in message for message in doc.errors["ms_ssim"])  # the images are too small for 5 scales
    curve = doc.curves[0]
    assert curve.results["ms_ssim"] == [None] and curve.results["psnr"][0] > 0


def test_set_level_metrics_use_stored_images_and_resume(eval_files, tmp_path, counting, monkeypatch):
    """FID/KID per (rate, tau) group from the image store; with fake features, since Inception is not cached."""
    import dpfusion.eval.scoring as scoring

    registry = dict(METRICS)
    monkeypatch.setattr(scoring, "_registry", lambda: (registry, {m: None for m in registry}))
    calls = []

    def features(images, metric):
        calls.append(len(images))
        return np.stack([t.mean(dim=(2, 3))[0].double().numpy() for t in images for _ in range(3)]) + np.arange(3)

    sweep = _sweep(eval_files, tmp_path, counting(), metrics=("psnr", "fid"), rates=(0.0,), baselines={"webp": (40,)})
    records = sweep.run()
    values, errors = setlevel.set_level_values(sweep, progress=False, features=features)
    assert not errors
    assert len(values) == len(TAUS) + 1 and len(calls) == 1 + len(TAUS) + 1  # originals once, then each group
    stored = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "results.images").rglob("*.png"))
    assert len(stored) == 2 * (len(TAUS) + 1)
    doc = build_results(records, {"rates": [0.0], "taus": list(TAUS), "seeds": [0]}, sweep.scorer.info(), values)
    fids = {c.id: c.results["fid"][0] for c in doc.curves}
    assert set(fids) == {"tau0", "tau0.5", "tau1", "webp"} and all(v >= 0 for v in fids.values())
    calls.clear()
    again, _ = setlevel.set_level_values(
        _sweep(eval_files, tmp_path, counting(), metrics=("psnr", "fid"), rates=(0.0,), baselines={"webp": (40,)}),
        progress=False,
        features=features,
    )
    assert again == values and calls == []  # journalled: nothing recomputed


def test_several_seeds_share_one_bitstream_and_report_their_spread(eval_files, tmp_path, counting, no_metric_weights):
    model = counting()
    sweep = _sweep(eval_files, tmp_path, model, rates=(1.0,), seeds=(0, 1))
    records = sweep.run()
    assert model.compress_calls == 2 and len(model.decode_calls) == 4  # one encode per image, one decode per seed
    by_seed = {r.seed: r for r in records if r.image == "a.png"}
    assert by_seed[0].values["1"] == by_seed[1].values["1"]  # tau = 1 does not depend on the noise
    assert by_seed[0].values["0"] != by_seed[1].values["0"]
    doc = build_results(records, {"rates": [1.0], "taus": list(TAUS), "seeds": [0, 1]}, sweep.scorer.info())
    spread = {c.id: c.seed_std["psnr"][0] for c in doc.curves}
    assert spread["tau1"] == 0.0 and spread["tau0"] > 0.0
