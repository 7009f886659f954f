"""End to end: the real ``dpfusion serve`` on a free port, driven in Debian's headless Chromium by Playwright.

Every image the page shows is compared byte for byte with ``python -m dpfusion decompress``
of the downloaded ``.dpf`` at the same tau (or tau map), steps and seed.
"""

from __future__ import annotations

import base64
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import STEPS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # the skip below names the reason
    sync_playwright = None

if sync_playwright is None:
    pytestmark = [
        pytestmark,
        pytest.mark.skip(reason="playwright's Python package is not installed (pip install playwright)"),
    ]
elif not CHROMIUM.is_file():
    pytestmark = [pytestmark, pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")]

SHOWN_BYTES = """async () => {
  const bytes = new Uint8Array(await (await fetch(document.getElementById("shown").src)).arrayBuffer());
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}"""
STARTUP_S = 600
WAIT_MS = 300_000
SETTLED = "label => document.getElementById('shown').dataset.tau === label && document.body.dataset.state === 'idle'"


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }


def _address(process: subprocess.Popen, log: Path) -> str:
    """The address the server prints; start-up on two cores shared with training can take minutes."""
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_S)
    line = process.stdout.readline() if ready else ""
    match = re.search(r"http://\S+/", line)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"server printed no address within {STARTUP_S} s: {line!r} {log.read_text()!r}")
    return match.group(0)


@pytest.fixture(scope="module")
def server(sample_crop: Path, metric_weights: Path) -> Iterator[str]:
    """``python -m dpfusion serve --port 0``; yields its address (stderr goes to a file: a pipe could fill up)."""
    command = [sys.executable, "-m", "dpfusion", "serve", "--port", "0", "--sample", str(sample_crop)]
    log = sample_crop.with_name("server.log")
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env())
    try:
        yield _address(process, log)
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=WAIT_MS)
        yield browser
        browser.close()


def _open(browser, server: str) -> Page:
    page = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900}).new_page()
    page.goto(server)
    page.wait_for_selector("body[data-state=ready]")
    page.fill("#steps", str(STEPS))
    return page


def _shown(page: Page) -> bytes:
    return base64.b64decode(page.evaluate(SHOWN_BYTES))


def _drag_tau(page: Page, start: float, end: float) -> str:
    box = page.locator("#tau").bounding_box()
    y = box["y"] + box["height"] / 2

    def x(value: float) -> float:  # the thumb is about 16 px wide
        return box["x"] + 8 + value * (box["width"] - 16)

    page.mouse.move(x(start), y)
    page.mouse.down()
    page.mouse.move(x(end) - (20 if end == 0 else 0), y, steps=6)
    page.mouse.up()
    value = page.input_value("#tau")
    page.wait_for_function(SETTLED, arg=f"{float(value):.2f}", timeout=WAIT_MS)
    return value


def _cli_decode(dpf: Path, out: Path, *options: str) -> None:
    command = [sys.executable, "-m", "dpfusion", "decompress", str(dpf), "-o", str(out), "--steps", str(STEPS)]
    subprocess.run([*command, *options], check=True, env=_env(), capture_output=True, timeout=600)


def test_slider_wipe_and_downloads_match_the_cli(server: str, browser, tmp_path: Path) -> None:
    page = _open(browser, server)
    page.evaluate("""() => { window.states = [];
      new MutationObserver(() => window.states.push(document.body.dataset.state))
        .observe(document.body, { attributes: true, attributeFilter: ["data-state"] }); }""")
    page.click("#use-sample")
    page.wait_for_function(SETTLED, arg="1.00", timeout=WAIT_MS)
    assert re.search(r"\d+ bytes \(.*\), \d\.\d{4} bpp", page.inner_text("#size-info"))
    with page.expect_download() as download:
        page.click("#download-dpf")
    dpf = tmp_path / "page.dpf"
    download.value.save_as(dpf)
    assert f"{dpf.stat().st_size} bytes" in page.inner_text("#size-info")
    images, taus, previous = {}, [], 1.0
    for target in (0.7, 0.35, 0.0):
        taus.append(_drag_tau(page, previous, target))
        previous = float(taus[-1])
        images[taus[-1]] = _shown(page)
    assert len(set(taus)) == 3 and "busy" in page.evaluate("window.states")
    assert len(set(images.values())) == 3
    _cli_decode(dpf, tmp_path / "cli.png", "--tau", ",".join(taus))
    for tau, image in images.items():
        assert image == (tmp_path / f"cli_tau{float(tau):.2f}.png").read_bytes(), tau
    with page.expect_download() as download:
        page.click("#download-png")
    assert Path(download.value.path()).read_bytes() == images[taus[-1]]
    psnr = page.inner_text("#metrics tr[data-metric=psnr] td")
    assert re.fullmatch(r"\d+\.\d\d", psnr), psnr
    page.select_option("#compare", "original")
    assert page.locator("#reference").is_visible() and "inset" in page.get_attribute("#reference", "style")
    other = _open(browser, server)
    other.set_input_files("#open-dpf", str(dpf))
    other.wait_for_function(SETTLED, arg="1.00", timeout=WAIT_MS)
    assert other.get_attribute("#download-dpf", "href") != page.get_attribute("#download-dpf", "href")
    assert other.locator("#compare option[value=original]").is_disabled()


def test_painted_tau_map_decodes_like_the_cli(server: str, browser, tmp_path: Path) -> None:
    page = _open(browser, server)
    page.click("#use-sample")
    page.wait_for_function(SETTLED, arg="1.00", timeout=WAIT_MS)
    base = _shown(page)
    page.check("#paint")
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=10)
    page.mouse.up()
    page.click("#decode-map")
    page.wait_for_function(SETTLED, arg="map", timeout=WAIT_MS)
    painted = _shown(page)
    assert painted != base
    tau_map = tmp_path / "map.png"
    tau_map.write_bytes(base64.b64decode(page.evaluate("document.getElementById('map').toDataURL().split(',')[1]")))
    with page.expect_download() as download:
        page.click("#download-dpf")
    dpf = tmp_path / "page.dpf"
    download.value.save_as(dpf)
    _cli_decode(dpf, tmp_path / "cli.png", "--tau-map", str(tau_map))
    assert painted == (tmp_path / "cli.png").read_bytes()
