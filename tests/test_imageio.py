"""Image loading for odd inputs (formats, modes, EXIF, sizes, bad files) and atomic PNG writing."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dpfusion import container, imageio
from dpfusion.errors import DPFusionError
from dpfusion.imageio import load_image, save_png, to_tensor, to_uint8
from tests.decoding import decode_base


def _write_rgb16_png(path: Path, samples: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    height, width, _ = samples.shape
    raw = b"".join(b"\x00" + samples[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _grey16(height: int = 17, width: int = 33) -> np.ndarray:
    return (np.arange(height * width).reshape(height, width) * 4099 % 65536).astype(np.uint16)


def _load_quietly(path: Path) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        array = load_image(path)
    return array, [str(w.message) for w in caught]


def _make_inputs(folder: Path, rgb: np.ndarray) -> dict[str, tuple[Path, np.ndarray | None, bool]]:
    """name -> (file, exact expected array or None for lossy formats, whether an alpha warning is due)."""
    grey = rgb[..., 1]
    alpha = np.full(grey.shape, 128, np.uint8)
    cases: dict[str, tuple[Path, np.ndarray | None, bool]] = {}

    def add(name: str, image: Image.Image, expected: np.ndarray | None, alpha_warning: bool = False, **kw) -> None:
        path = folder / name
        image.save(path, **kw)
        cases[name] = (path, expected, alpha_warning)

    add("rgb.png", Image.fromarray(rgb), rgb)
    add("rgb.jpg", Image.fromarray(rgb), None, quality=95)
    add("rgb.webp", Image.fromarray(rgb), None, quality=95)
    add("lossless.webp", Image.fromarray(rgb), rgb, lossless=True)
    add("rgb.tif", Image.fromarray(rgb), rgb)
    add("rgb.bmp", Image.fromarray(rgb), rgb)
    add("rgba.png", Image.fromarray(np.dstack([rgb, alpha])), rgb, alpha_warning=True)
    add("rgba.webp", Image.fromarray(np.dstack([rgb, alpha])), rgb, alpha_warning=True, lossless=True)
    add("la.png", Image.fromarray(np.dstack([grey, alpha]), mode="LA"), np.dstack([grey] * 3), alpha_warning=True)
    add("l.png", Image.fromarray(grey), np.dstack([grey] * 3))
    add("l.jpg", Image.fromarray(grey), None, quality=95)
    bilevel = grey > 128
    add("bilevel.png", Image.fromarray(bilevel), np.dstack([bilevel.astype(np.uint8) * 255] * 3))
    palette = Image.fromarray(rgb).quantize(colors=16)
    palette.info["transparency"] = 0
    add("palette.png", palette, np.asarray(palette.convert("RGB")), alpha_warning=True, transparency=0)
    opaque = Image.fromarray(rgb).quantize(colors=16)
    add("palette.gif", opaque, np.asarray(opaque.convert("RGB")))
    cmyk = Image.fromarray(rgb).convert("CMYK")
    add("cmyk.jpg", cmyk, None, quality=95)
    add("cmyk.tif", cmyk, np.asarray(cmyk.convert("RGB")))
    height, width = rgb.shape[:2]
    g16 = _grey16(height, width)
    expected16 = np.dstack([np.round(g16 / 65535 * 255).astype(np.uint8)] * 3)
    add("grey16.png", Image.fromarray(g16), expected16)
    add("grey16.tif", Image.fromarray(g16), expected16)
    rgb16 = rgb.astype(np.uint16) * 257  # v * 257 / 65535 * 255 = v, and the high byte is v too
    _write_rgb16_png(folder / "rgb16.png", rgb16)
    cases["rgb16.png"] = (folder / "rgb16.png", rgb, False)
    return cases


INPUT_NAMES = (
    "rgb.png rgb.jpg rgb.webp lossless.webp rgb.tif rgb.bmp rgba.png rgba.webp la.png l.png l.jpg bilevel.png "
    "palette.png palette.gif cmyk.jpg cmyk.tif grey16.png grey16.tif rgb16.png"
).split()


@pytest.fixture
def odd_inputs(tmp_path, tiny_image_factory):
    folder = tmp_path / "inputs"
    folder.mkdir()
    return _make_inputs(folder, tiny_image_factory(17, 33))


def test_every_odd_input_is_covered(odd_inputs) -> None:
    assert sorted(odd_inputs) == sorted(INPUT_NAMES)


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_odd_inputs_load_as_uint8_rgb(odd_inputs, tiny_image_factory, name) -> None:
    path, expected, alpha_warning = odd_inputs[name]
    array, messages = _load_quietly(path)
    assert array.dtype == np.uint8 and array.shape == (17, 33, 3)
    assert array.flags.writeable
    alpha_messages = [m for m in messages if "alpha channel dropped" in m]
    assert bool(alpha_messages) == alpha_warning, messages
    if alpha_warning:
        assert name in alpha_messages[0]
    if expected is not None:
        np.testing.assert_array_equal(array, expected)
    else:  # lossy: close to the source, not equal
        source = tiny_image_factory(17, 33)
        if name.startswith("l."):
            source = np.dstack([source[..., 1]] * 3)
        assert np.abs(array.astype(int) - source).mean() < 12


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_odd_inputs_decode_to_their_original_size(odd_inputs, tiny_gain_codec, name) -> None:
    path = odd_inputs[name][0]
    array, _ = _load_quietly(path)
    decoded = decode_base(container.compress(tiny_gain_codec, array), codec=tiny_gain_codec)
    assert decoded.image.shape == array.shape == (17, 33, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied(tmp_path, tiny_image_factory, suffix) -> None:
    stored = tiny_image_factory(10, 24)  # as the sensor wrote it: 24 wide, 10 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / f"rotated{suffix}"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), **({"quality": 95} if suffix == ".jpg" else {}))
    array = load_image(path)
    assert array.shape == (24, 10, 3)
    displayed = np.rot90(stored, k=-1)
    if suffix == ".png":
        np.testing.assert_array_equal(array, displayed)
    else:
        assert np.abs(array.astype(int) - displayed).mean() < 12


@pytest.mark.parametrize("size", [(17, 33), (3, 5), (1, 1), (1, 70), (96, 65)])
def test_any_size_round_trips_through_the_codec(tmp_path, tiny_gain_codec, tiny_image_factory, size) -> None:
    path = tmp_path / "odd.png"
    Image.fromarray(tiny_image_factory(*size)).save(path)
    array = load_image(path)
    assert array.shape == (*size, 3)
    decoded = decode_base(container.compress(tiny_gain_codec, array), codec=tiny_gain_codec)
    assert decoded.image.shape == (*size, 3)
    assert (decoded.file.height, decoded.file.width) == size


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"this is not an image\n", "notes.png"),
        (b"", "empty.jpg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken.png"),
    ],
)
def test_non_image_files_are_refused(tmp_path, content, name) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DPFusionError, match="not a readable image") as exc:
        load_image(path)
    assert "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def encoded_images() -> dict[str, bytes]:
    """Small valid files of each format, as bytes, to mutate."""
    rgb = (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    blobs = {}
    for fmt, options in [("PNG", {}), ("JPEG", {"exif": exif.tobytes()}), ("WEBP", {}), ("TIFF", {}), ("BMP", {})]:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, fmt, **options)
        blobs[fmt] = buffer.getvalue()
    return blobs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(["PNG", "JPEG", "WEBP", "TIFF", "BMP"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_images_are_refused_or_loaded(tmp_path, encoded_images, fmt, edits, cut) -> None:
    """Any damage ends in a one-line DPFusionError or a valid uint8 RGB array, never another exception."""
    data = bytearray(encoded_images[fmt])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(data))
    try:
        array, _ = _load_quietly(path)
    except DPFusionError as exc:
        assert "\n" not in str(exc)
        return
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3


def test_truncated_image_is_refused(tmp_path, tiny_image_factory) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(tiny_image_factory(64, 64)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DPFusionError, match="not a readable image") as exc:
        load_image(path)
    assert "\n" not in str(exc.value)


def test_missing_file_and_folder(tmp_path) -> None:
    for path in (tmp_path / "absent.png", tmp_path):
        with pytest.raises(DPFusionError, match="image not found") as exc:
            load_image(path)
        assert "\n" not in str(exc.value)


def test_pixel_limit_counts_the_padded_size(tmp_path, tiny_image_factory, monkeypatch) -> None:
    monkeypatch.setattr(imageio, "MAX_PIXELS", 64 * 128)
    path = tmp_path / "big.png"
    Image.fromarray(tiny_image_factory(1, 129)).save(path)  # 129 pixels, but the codec works on 64x192
    with pytest.raises(DPFusionError, match=r"129x1, padded to 192x64 = 12288 pixels, is over the limit of 8192") as e:
        load_image(path)
    assert "\n" not in str(e.value)
    Image.fromarray(tiny_image_factory(64, 128)).save(path)
    assert load_image(path).shape == (64, 128, 3)  # exactly at the limit is fine


@given(height=st.integers(1, 1 << 20), width=st.integers(1, 1 << 20))
def test_padded_size_is_the_smallest_stride_multiple(height: int, width: int) -> None:
    padded_h, padded_w = imageio.padded_size(height, width)
    for side, padded in ((height, padded_h), (width, padded_w)):
        assert padded % 64 == 0 and side <= padded < side + 64


def test_tensor_conversions_are_exact_inverses() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    array = np.dstack([values, values.T, 255 - values])
    tensor = to_tensor(array)
    assert tensor.shape == (1, 3, 16, 16) and tensor.dtype == torch.float32
    assert tensor.min() == 0 and tensor.max() == 1
    np.testing.assert_array_equal(to_uint8(tensor), array)
    np.testing.assert_array_equal(to_uint8(tensor[0]), array)
    assert to_tensor(array[:, ::-1]).shape == (1, 3, 16, 16)  # negative strides are fine
    read_only = array.copy()
    read_only.setflags(write=False)  # what np.asarray(PIL image) gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch would warn about a non-writable array
        assert torch.equal(to_tensor(read_only), tensor)


def test_to_uint8_rounds_and_clamps() -> None:
    x = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 254.4 / 255, 1.0, 7.0]).reshape(1, 1, 7).expand(3, 1, 7)
    assert to_uint8(x)[0, :, 0].tolist() == [0, 0, 0, 1, 254, 255, 255]


def test_save_png_round_trip_and_no_leftovers(tmp_path, tiny_image) -> None:
    target = tmp_path / "sub" / "out.png"
    save_png(target, tiny_image)
    np.testing.assert_array_equal(np.asarray(Image.open(target)), tiny_image)
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_save_png_failure_keeps_the_old_file(tmp_path, tiny_image, monkeypatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def failing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(DPFusionError, match="cannot write .*out.png: disk full"):  # one line, not a traceback
        save_png(target, tiny_image)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp", ".tif"])
def test_an_animation_is_refused_in_one_line(tmp_path, tiny_image_factory, suffix) -> None:
    path = tmp_path / f"anim{suffix}"
    frames = [Image.fromarray(tiny_image_factory(8, 12, seed=s)) for s in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(DPFusionError, match=rf"anim\{suffix}: an animation of 3 frames; dpfusion encodes still") as e:
        load_image(path)
    assert "\n" not in str(e.value)
    frames[0].save(tmp_path / f"still{suffix}")  # one frame of the same format is fine
    assert load_image(tmp_path / f"still{suffix}").shape == (8, 12, 3)
