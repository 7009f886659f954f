"""Take docs/serve.png: the page of `dpfusion serve` on the bundled sample, tau 0 wiped against the original.

    python scripts/serve_screenshot.py [-o docs/serve.png] [--steps 10]

Starts the real server on a free port and drives Debian's /usr/bin/chromium with Playwright.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

SETTLED = "label => document.getElementById('shown').dataset.tau === label && document.body.dataset.state === 'idle'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/serve.png")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tau", default="0")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "dpfusion", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        address = re.search(r"http://\S+/", server.stdout.readline()).group(0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(address)
            page.wait_for_selector("body[data-state=ready]")
            page.fill("#steps", str(args.steps))
            page.click("#use-sample")
            page.wait_for_function(SETTLED, arg="1.00", timeout=600_000)
            page.fill("#tau", args.tau)
            page.wait_for_function(SETTLED, arg=f"{float(args.tau):.2f}", timeout=600_000)
            page.select_option("#compare", "original")
            page.screenshot(path=args.output, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"wrote {Path(args.output)}")


if __name__ == "__main__":
    main()
