"""The JSON API through FastAPI's TestClient: real decodes, bad uploads, sessions, limits."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from dpfusion import pack, unpack
from dpfusion.container import compress
from dpfusion.metrics import available_metrics
from dpfusion.serve.uploads import png_bytes
from tests.conftest import build_tiny_codec
from tests.serve.conftest import CROP, STEPS


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def _sample_session(client) -> dict:
    response = client.post("/api/compress", data={"sample": "true"})
    assert response.status_code == 200, response.text
    return response.json()


def test_compress_reports_the_real_file_and_decodes_like_the_library(client_factory, model, sample_array) -> None:
    client = client_factory()
    info = _sample_session(client)
    data = client.get(f"/api/sessions/{info['session']}/dpf").content
    assert data == model.compress(sample_array)
    assert (info["width"], info["height"], info["bytes"]) == (CROP, CROP, len(data))
    assert info["bpp"] == pytest.approx(8 * len(data) / CROP**2)
    for tau in (1.0, 0.3):
        response = client.post(f"/api/sessions/{info['session']}/decode", data={"tau": tau, "steps": STEPS})
        assert response.headers["content-type"] == "image/png"
        assert response.content == png_bytes(model.decompress(data, tau=tau, steps=STEPS))
    original = client.get(f"/api/sessions/{info['session']}/original.png").content
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(original))), sample_array)


def test_decode_with_a_tau_map_and_another_rate(client_factory, model) -> None:
    client = client_factory()
    sid = _sample_session(client)["session"]
    tau_map = np.full((CROP, CROP), 255, np.uint8)
    tau_map[:, : CROP // 2] = 0  # left half realistic
    form = {"steps": STEPS}
    response = client.post(f"/api/sessions/{sid}/decode", data=form, files={"tau_map": ("m.png", _png(tau_map))})
    data = client.get(f"/api/sessions/{sid}/dpf").content
    expected = model.decompress(data, tau=tau_map.astype(np.float32) / 255.0, steps=STEPS)
    assert response.content == png_bytes(expected)
    assert not np.array_equal(expected[:, :40], model.decompress(data, tau=1.0)[:, :40])
    lower = client.post(f"/api/sessions/{sid}/rate", data={"quality": 0.5}).json()
    assert lower["session"] == sid and lower["quality"] == 0.5 and lower["bytes"] < len(data)
    assert client.get(f"/api/sessions/{sid}/dpf").content == model.compress(
        np.asarray(Image.open(io.BytesIO(client.get(f"/api/sessions/{sid}/original.png").content))), quality=0.5
    )


def test_metrics_against_the_original_and_tau_1(client_factory, model, sample_array) -> None:
    from dpfusion.imageio import to_tensor
    from dpfusion.metrics.psnr import psnr

    client = client_factory()
    sid = _sample_session(client)["session"]
    scores = client.post(f"/api/sessions/{sid}/metrics", data={"tau": 0.0, "steps": STEPS}).json()
    data = client.get(f"/api/sessions/{sid}/dpf").content
    shown = model.decompress(data, tau=0.0, steps=STEPS)
    assert scores["vs_original"]["psnr"]["value"] == pytest.approx(
        float(psnr(to_tensor(shown), to_tensor(sample_array))[0])
    )
    assert 0.0 < scores["vs_original"]["ms_ssim"]["value"] < 1.0
    lpips_missing = available_metrics()["lpips_alex"]
    assert ("unavailable" in scores["vs_original"]["lpips_alex"]) == (lpips_missing is not None)
    base = client.post(f"/api/sessions/{sid}/metrics", data={"tau": 1.0}).json()["vs_tau1"]
    assert base["psnr"] == {"identical": True} and base["ms_ssim"]["value"] == pytest.approx(1.0)


def _foreign_files(model, sample_array: np.ndarray) -> dict[str, bytes]:
    """Bitstreams this server must refuse: other weights (by name and by fingerprint), corrupt, truncated."""
    own = model.compress(sample_array[:64, :64])
    tiny = compress(build_tiny_codec("gain-hyperprior", 0, 1.0), sample_array[:64, :64])
    renamed = pack(dataclasses.replace(unpack(own), fingerprint=bytes(8)))
    corrupt = bytearray(own)
    corrupt[len(own) // 2] ^= 0xFF
    return {"other codec": tiny, "other weights": renamed, "corrupt": bytes(corrupt), "truncated": own[:-7]}


def test_bad_uploads_get_a_one_line_4xx_and_the_server_keeps_serving(client_factory, model, sample_array) -> None:
    client = client_factory()
    sid = _sample_session(client)["session"]
    png = _png(sample_array)
    photos = {
        "not an image": b"hello, not a picture\n",
        "truncated": png[: len(png) // 2],
        "zero bytes": b"",
        "a .dpf": model.compress(sample_array[:64, :64]),
        "gif": _gif(sample_array),
    }
    messages = {}
    for name, photo in photos.items():
        messages[name] = _one_line_error(client.post("/api/compress", files={"image": ("x.png", photo)}), 400)
    for name, data in {**_foreign_files(model, sample_array), "zero bytes": b"", "a png": png}.items():
        messages[f"dpf {name}"] = _one_line_error(client.post("/api/open", files={"dpf": ("x.dpf", data)}), 400)
    map_error = client.post(f"/api/sessions/{sid}/decode", files={"tau_map": ("m.png", b"nope")})
    messages["tau map"] = _one_line_error(map_error, 400)
    assert "empty" in messages["zero bytes"] and "not a PNG, JPEG or WebP" in messages["not an image"]
    assert "other dpfusion-default weights" in messages["dpf other weights"]
    assert "gain-hyperprior" in messages["dpf other codec"]
    ok = client.post(f"/api/sessions/{sid}/decode", data={"tau": 1.0})
    assert ok.status_code == 200 and ok.content.startswith(b"\x89PNG")


def _gif(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="GIF")
    return buffer.getvalue()


def test_size_and_pixel_limits(client_factory, sample_array) -> None:
    client = client_factory(max_upload_bytes=20_000, max_pixels=100 * 100)
    big = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    too_large = _one_line_error(client.post("/api/compress", files={"image": ("big.png", _png(big))}), 413)
    assert too_large.endswith("over the limit of 20 kB")
    wide = _one_line_error(
        client.post("/api/compress", files={"image": ("s.png", _png(np.zeros((120, 176, 3), np.uint8)))}), 400
    )
    assert "over this server's limit of 10000" in wide
    assert client.post("/api/compress", files={"image": ("s.png", _png(sample_array[:60, :60]))}).status_code == 200
    assert _one_line_error(client.post("/api/compress", data={"sample": "true"}), 400).endswith("limit of 10000")


def test_invalid_fields_and_paths(client_factory) -> None:
    client = client_factory(max_steps=5)
    sid = _sample_session(client)["session"]
    assert "tau" in _one_line_error(client.post(f"/api/sessions/{sid}/decode", data={"tau": 1.5}), 422)
    assert "steps" in _one_line_error(client.post(f"/api/sessions/{sid}/decode", data={"tau": 0, "steps": 9}), 400)
    assert "either tau or tau_map" in _one_line_error(client.post(f"/api/sessions/{sid}/decode", data={}), 400)
    assert "sample" in _one_line_error(client.post("/api/compress", data={}), 400)
    for path in ("/api/sessions/nope/dpf", "/api/sessions/..%2F..%2Fetc%2Fpasswd/dpf", "/static/../api.py"):
        assert client.get(path).status_code == 404, path
    assert _one_line_error(client.get("/static/%2e%2e/api.py"), 404)


def test_sessions_are_separate_and_opened_files_decode(client_factory, model, sample_array) -> None:
    client = client_factory()
    first = _sample_session(client)
    upload = client.post("/api/compress", files={"image": ("my photo!.png", _png(sample_array[:64, :96]))}).json()
    assert first["session"] != upload["session"] and upload["name"] == "my_photo" and upload["width"] == 96
    data = client.get(f"/api/sessions/{first['session']}/dpf").content
    assert client.get(f"/api/sessions/{upload['session']}/dpf").content != data
    opened = client.post("/api/open", files={"dpf": ("../../etc/x.dpf", data)}).json()
    assert opened["has_original"] is False and opened["bytes"] == len(data) and opened["name"] == "x"
    decoded = client.post(f"/api/sessions/{opened['session']}/decode", data={"tau": 0.5, "steps": STEPS}).content
    assert decoded == png_bytes(model.decompress(data, tau=0.5, steps=STEPS))
    assert client.get(f"/api/sessions/{opened['session']}/original.png").status_code == 404
    assert client.post(f"/api/sessions/{opened['session']}/metrics", data={"tau": 1}).json()["vs_original"] is None
    client.delete(f"/api/sessions/{first['session']}")
    assert client.get(f"/api/sessions/{first['session']}").status_code == 404


def test_openapi_lists_the_api(client_factory) -> None:
    paths = client_factory().get("/openapi.json").json()["paths"]
    assert {"/api/compress", "/api/open", "/api/sessions/{sid}/decode", "/api/sessions/{sid}/metrics"} <= set(paths)
