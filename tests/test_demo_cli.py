"""``dpfusion demo`` on a tiny stand-in for the embedded model, and the real embedded weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dpfusion
from dpfusion.cli import main
from dpfusion.codecs import loading
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.fusion.checkpoint import save_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.weights_io import save_weights
from tests.conftest import build_tiny_model
from tests.decoding import decode_base


def _default_folder(folder: Path, with_fusion: bool) -> Path:
    model = build_tiny_model("gain-hyperprior", 0)
    model.update(force=True)
    save_weights(folder, "codec.safetensors", "codec.json", model.state_dict(), model)
    loading.ReleaseManifest("codec.safetensors", default_rate=1.0).save_config(folder / loading.RELEASE_NAME)
    if with_fusion:
        codec = loading.load_codec("default")
        fusion = LatentFusion(codec.latent_channels, channels=8, units=1, heads=2)
        torch.manual_seed(0)
        torch.nn.init.normal_(fusion.out.weight, std=0.5)
        save_fusion(folder, fusion, NoiseSchedule(), codec)
    return folder


@pytest.mark.parametrize("with_fusion", [True, False])
def test_demo_writes_table_images_and_grid(tmp_path, tiny_png, monkeypatch, capsys, with_fusion, metric_weights):
    monkeypatch.setattr(loading, "DEFAULT_DIR", tmp_path / "default")
    (tmp_path / "default").mkdir()
    _default_folder(tmp_path / "default", with_fusion)
    out = tmp_path / "demo"
    assert main(["demo", str(tiny_png), "-o", str(out), "--steps", "2"]) == 0
    stdout = capsys.readouterr().out
    taus = ("1.00", "0.50", "0.00") if with_fusion else ("1.00",)
    table = [line.split() for line in stdout.splitlines() if line.strip().startswith(taus)]
    assert [row[0] for row in table] == list(taus)
    data = (out / "tiny.dpf").read_bytes()
    fitted = dpfusion.unpack(data).dial is not None
    assert ("the sender's dial for this image" if fitted else "the module's dial") in stdout
    bpp = 8 * len(data) / (40 * 56)
    assert all(float(row[1]) == pytest.approx(bpp, abs=1e-4) for row in table)
    base = decode_base(data).image
    np.testing.assert_array_equal(np.asarray(Image.open(out / "tiny_tau1.00.png")), base)
    if with_fusion:
        realistic = np.asarray(Image.open(out / "tiny_tau0.00.png"))
        assert not np.array_equal(realistic, base)
    else:
        assert "tau = 1 only" in stdout
    assert (out / "tiny_side_by_side.png").stat().st_size > 1000


def test_embedded_default_model_matches_its_manifest() -> None:
    """The shipped weights load, carry the fingerprint the manifest records, and round-trip exactly at tau = 1."""
    release = loading.ReleaseManifest.load_config(loading.DEFAULT_DIR / loading.RELEASE_NAME)
    model = dpfusion.load(image_dial=False)
    assert model.codec.fingerprint.hex() == release.fingerprint
    image = np.asarray(Image.open(Path(loading.__file__).parents[1] / "assets" / "dandelion.png"))[:64, :96]
    data = model.compress(image)
    assert dpfusion.unpack(data).codec == "dpfusion-default"
    np.testing.assert_array_equal(model.decompress(data, tau=1.0), decode_base(data).image)
    if model.fusion is not None:
        assert isinstance(model.fusion, LatentFusion)
        assert isinstance(model.codec, CodecAdapter)
