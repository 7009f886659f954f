"""Two-process (gloo, CPU, loopback) training under torchrun: it finishes, exports, resumes with two processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.cli import main
from dpfusion.codecs.loading import load_codec
from dpfusion.fusion.checkpoint import load_fusion
from dpfusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from tests.decoding import decode_base

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    result = subprocess.run(
        [*launcher, "-m", "dpfusion", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    return result


def test_two_process_fusion_training_exports_and_resumes(
    image_folder, tmp_path, tiny_gain_checkpoint, aux_folder_factory, tiny_image_factory, capsys
):
    codec = load_codec("gain-hyperprior", 1.0, tiny_gain_checkpoint)
    aux = aux_folder_factory(codec)
    out = tmp_path / "ddp"
    argv = ["train", "fusion", str(image_folder), "-o", str(out), "--model", "gain-hyperprior", "--quality", "1"]
    argv += ["--codec-checkpoint", str(tiny_gain_checkpoint), "--aux", str(aux), "--loss", "mse"]
    argv += ["--channels", "8", "--units", "1", "--heads", "2", "--T", "50", "--batch-size", "2", "--crop", "64"]
    argv += ["--device", "cpu", "--threads", "1", "--log-every", "1", "--checkpoint-every", "2", "--lr", "1e-3"]

    result = _torchrun([*argv, "--steps", "3"])
    assert result.stdout.count("fusion training done") == 1  # rank 0 alone reports and writes
    state = load_checkpoint(out / CHECKPOINT_NAME)
    assert state["step"] == 3 and state["world_size"] == 2 and len(state["rng"]) == 2
    # Each rank drew its own crops: their crop generators ended in different states.
    assert not torch.equal(state["rng"][0]["crops"], state["rng"][1]["crops"])
    assert (out / "fusion.safetensors").is_file() and (out / "fusion.json").is_file()

    fusion, schedule = load_fusion(out, codec)  # the exported module loads in a single process
    exported = fusion.state_dict()
    assert all(torch.equal(exported[k], v) for k, v in state["trainable"].items())
    model = Model(codec, fusion, schedule, image_dial=False)
    data = model.compress(tiny_image_factory(40, 56))
    zero, one = model.decompress_many(data, [0.0, 1.0], steps=3)
    np.testing.assert_array_equal(one, decode_base(data, codec=codec).image)
    assert zero.shape == one.shape

    # One process cannot continue a two-process run...
    assert main([*argv, "--steps", "5", "--resume"]) == 1
    assert "2 process(es)" in capsys.readouterr().err
    # ... two can.
    _torchrun([*argv, "--steps", "5", "--resume"])
    resumed = load_checkpoint(out / CHECKPOINT_NAME)
    assert resumed["step"] == 5 and resumed["world_size"] == 2
    assert not torch.equal(resumed["trainable"]["out.weight"], state["trainable"]["out.weight"])
    steps = [int(line.split(",")[0]) for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5]
    load_fusion(out, codec)
