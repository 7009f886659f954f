"""``dpfusion decompress``: several taus in one call, tau maps, tau = 1 byte for byte, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dpfusion.api import load
from dpfusion.bitstream import decode_dial, unpack
from dpfusion.cli import main
from dpfusion.codecs.loading import load_codec
from dpfusion.fusion.checkpoint import save_fusion
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.imageio import load_image, save_png
from tests.decoding import decode_base

torch.set_num_threads(1)


@pytest.fixture
def setup(tmp_path, tiny_gain_checkpoint, tiny_png):
    """A .dpf written by the CLI with the tiny gain codec, and a fusion folder trained (randomly) for it."""
    dpf = tmp_path / "x.dpf"
    assert main(["compress", str(tiny_png), "-o", str(dpf), "--model", "gain-hyperprior", "--quality", "1"]
                + ["--checkpoint", str(tiny_gain_checkpoint)]) == 0  # fmt: skip
    codec = load_codec("gain-hyperprior", 1.0, tiny_gain_checkpoint)
    torch.manual_seed(0)
    fusion = LatentFusion(codec.latent_channels, channels=8, units=1, heads=2)
    with torch.no_grad():
        fusion.out.weight.normal_(0, 0.3)
    save_fusion(tmp_path / "fusion", fusion, NoiseSchedule(num_train_steps=100), codec)
    common = ["--checkpoint", str(tiny_gain_checkpoint), "--steps", "3"]
    return dpf, common + ["--fusion", str(tmp_path / "fusion")], common, codec


def test_several_taus_write_one_file_each(setup, tmp_path, capsys):
    dpf, args, _, codec = setup
    assert main(["decompress", str(dpf), "--tau", "0,0.5,1", *args]) == 0
    names = ["x_tau0.00.png", "x_tau0.50.png", "x_tau1.00.png"]
    for name in names:
        assert (tmp_path / name).is_file(), name
    assert "decoded 3 image(s)" in capsys.readouterr().out
    images = [load_image(tmp_path / name) for name in names]
    base = decode_base(dpf.read_bytes(), codec=codec).image
    np.testing.assert_array_equal(images[2], base)
    assert not np.array_equal(images[0], base) and not np.array_equal(images[0], images[1])
    # -o names the family of outputs.
    assert main(["decompress", str(dpf), "--tau", "0,1", "-o", str(tmp_path / "out" / "y.png"), *args]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["y_tau0.00.png", "y_tau1.00.png"]
    np.testing.assert_array_equal(load_image(tmp_path / "out" / "y_tau0.00.png"), images[0])


def test_tau_one_equals_the_base_output_byte_for_byte(setup, tmp_path):
    dpf, args, bare, codec = setup
    assert main(["decompress", str(dpf), "--tau", "1", "-o", str(tmp_path / "fused.png"), *args]) == 0
    assert main(["decompress", str(dpf), "-o", str(tmp_path / "plain.png"), *bare]) == 0  # no fusion module
    save_png(tmp_path / "reference.png", decode_base(dpf.read_bytes(), codec=codec).image)
    fused = (tmp_path / "fused.png").read_bytes()
    assert fused == (tmp_path / "plain.png").read_bytes() == (tmp_path / "reference.png").read_bytes()


def test_tau_map(setup, tmp_path):
    dpf, args, _, _ = setup
    height, width = load_image(tmp_path / "tiny.png").shape[:2]
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert (
        main(["decompress", str(dpf), "--tau-map", str(tmp_path / "mask.png"), "-o", str(tmp_path / "m.png"), *args])
        == 0
    )
    assert main(["decompress", str(dpf), "--tau", "0,1", "-o", str(tmp_path / "e.png"), *args]) == 0
    mapped = load_image(tmp_path / "m.png")
    assert mapped.shape == (height, width, 3)
    assert not np.array_equal(mapped, load_image(tmp_path / "e_tau0.00.png"))
    assert not np.array_equal(mapped, load_image(tmp_path / "e_tau1.00.png"))
    # An all-white map is tau = 1 everywhere: the base image; a map of another size is resized.
    Image.fromarray(np.full((7, 9), 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.warns(UserWarning, match=rf"white.png: tau map is 9x7, the image {width}x{height}: resized to fit"):
        code = main(
            ["decompress", str(dpf), "--tau-map", str(tmp_path / "white.png"), "-o", str(tmp_path / "w.png"), *args]
        )
    assert code == 0
    np.testing.assert_array_equal(load_image(tmp_path / "w.png"), load_image(tmp_path / "e_tau1.00.png"))


def _one_line_error(capsys, fragment: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfusion: error:") and "\n" not in err, err
    assert fragment in err, err


def test_tau_below_one_without_a_fusion_module(setup, capsys, tmp_path):
    dpf, _, bare, _ = setup
    assert main(["decompress", str(dpf), "--tau", "0.3", *bare]) == 1
    _one_line_error(capsys, "fusion module")
    assert not (tmp_path / "x.png").exists()


def test_bad_options(setup, capsys, tmp_path):
    dpf, args, _, _ = setup
    assert main(["decompress", str(dpf), "--tau", "0.5", *args, "--steps", "0"]) == 1
    _one_line_error(capsys, "--steps")
    assert main(["decompress", str(dpf), "--tau", "0.5", "--tau-map", str(tmp_path / "tiny.png"), *args]) == 1
    _one_line_error(capsys, "--tau-map")
    assert main(["decompress", str(tmp_path / "missing.dpf"), *args]) == 1
    _one_line_error(capsys, "not found")
    for bad in ("1.5", "-0.1", "0,abc", "nan"):
        assert main(["decompress", str(dpf), "--tau", bad, *args]) == 1
        _one_line_error(capsys, "--tau")
    assert not list(tmp_path.glob("x*.png"))


def test_fusion_for_other_weights_is_refused(setup, capsys, tmp_path, gain_checkpoint_factory):
    dpf, _, _, _ = setup
    other = load_codec("gain-hyperprior", 1.0, gain_checkpoint_factory(1))
    save_fusion(tmp_path / "other", LatentFusion(other.latent_channels, 8, 1, 2), NoiseSchedule(100), other)
    _, _, bare, _ = setup
    assert main(["decompress", str(dpf), "--tau", "0", "--fusion", str(tmp_path / "other"), *bare]) == 1
    _one_line_error(capsys, other.fingerprint.hex())


def test_a_failure_on_the_second_output_leaves_no_first(setup, tmp_path, capsys, monkeypatch):
    dpf, args, _, _ = setup
    (tmp_path / "x_tau1.00.png").mkdir()  # the second output cannot be written
    assert main(["decompress", str(dpf), "--tau", "0,1", *args]) == 1
    _one_line_error(capsys, "it is a folder")
    assert not (tmp_path / "x_tau0.00.png").exists()
    (tmp_path / "x_tau1.00.png").rmdir()

    saves = []

    def failing_save(image, fp, *rest, **kwargs):
        saves.append(fp)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        original(image, fp, *rest, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    assert main(["decompress", str(dpf), "--tau", "0,1", *args]) == 1
    _one_line_error(capsys, "x_tau1.00.png: No space left on device")
    assert len(saves) == 2 and not list(tmp_path.glob("x_tau*"))


def test_sampler_flag_reaches_the_decoder(setup, tmp_path, capsys):
    """x0 is the 1-step tau-DDIM whatever --steps says, so with 3 steps it differs from ddim and equals 1 step."""
    dpf, args, _, _ = setup
    outputs = {}
    for label, extra in {"ddim3": ["--sampler", "ddim"], "x0": ["--sampler", "x0"], "ddim1": ["--steps", "1"]}.items():
        out = tmp_path / f"{label}.png"
        assert main(["decompress", str(dpf), "--tau", "0", "-o", str(out), *args, *extra]) == 0
        outputs[label] = out.read_bytes()
    assert outputs["x0"] == outputs["ddim1"] != outputs["ddim3"]
    assert "sampler x0" in capsys.readouterr().out
    assert main(["decompress", str(dpf), "--tau", "0", *args, "--sampler", "euler"]) == 1
    _one_line_error(capsys, "--sampler")
    # --compile (a module without adapter blocks has nothing to compile): the same bytes
    assert main(["decompress", str(dpf), "--tau", "0", "-o", str(tmp_path / "c.png"), *args, "--compile"]) == 0
    assert (tmp_path / "c.png").read_bytes() == outputs["ddim3"]


def test_compress_without_lpips_weights_is_refused_in_one_line(setup, tmp_path, tiny_png, capsys, monkeypatch):
    """The default encode fits the dial; without the metric's weights it names the fix and writes nothing."""
    _, with_fusion, _, _ = setup
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "refused.dpf"
    args = ["compress", str(tiny_png), "-o", str(out), "--model", "gain-hyperprior", "--quality", "1", *with_fusion[:2]]
    assert main([*args, *with_fusion[-2:]]) == 1
    _one_line_error(capsys, "the per-image dial needs LPIPS-alex: alexnet.safetensors")
    assert not out.exists()
    assert main([*args, *with_fusion[-2:], "--no-image-dial"]) == 0 and unpack(out.read_bytes()).dial is None


def test_compress_fits_the_dial_that_info_shows_and_decompress_uses(setup, tmp_path, tiny_png, capsys, monkeypatch):
    _, with_fusion, _, codec = setup
    fitted = decode_dial(bytes([250, 220, 190, 160, 130, 100, 70, 40, 30, 20, 10]))
    monkeypatch.setattr("dpfusion.api.fit_image_dial", lambda image, base, real: fitted)
    monkeypatch.setattr("dpfusion.api.fit_unavailable", lambda: None)
    model_args = ["--model", "gain-hyperprior", "--quality", "1", "--checkpoint", with_fusion[1]]
    fusion_args = with_fusion[-2:]
    dpf, plain = tmp_path / "fitted.dpf", tmp_path / "plain.dpf"
    assert main(["compress", str(tiny_png), "-o", str(dpf), *model_args, *fusion_args]) == 0  # the default
    assert "dial fitted to the image" in capsys.readouterr().out
    assert main(["compress", str(tiny_png), "-o", str(plain), *model_args, *fusion_args, "--no-image-dial"]) == 0
    assert "dial fitted" not in capsys.readouterr().out
    assert unpack(dpf.read_bytes()).dial == fitted and unpack(plain.read_bytes()).dial is None
    assert main(["info", str(dpf)]) == 0
    assert "dial: fitted: 0.961 0.744" in capsys.readouterr().out
    assert main(["info", str(plain)]) == 0
    assert "dial: the module's" in capsys.readouterr().out
    for name, path in (("fitted", dpf), ("plain", plain)):
        out = tmp_path / f"{name}.png"
        assert main(["decompress", str(path), "-o", str(out), "--tau", "0.5", *with_fusion]) == 0
    model = load("gain-hyperprior", 1.0, with_fusion[1], with_fusion[-1])
    expected = model.open(dpf.read_bytes()).render(0.5, steps=3)
    np.testing.assert_array_equal(load_image(tmp_path / "fitted.png"), expected)
    assert not np.array_equal(load_image(tmp_path / "fitted.png"), load_image(tmp_path / "plain.png"))
