"""The default model's decodes of a few Kodak crops, hashed: the reference the golden test checks.

``python -m tests.golden`` rewrites ``tests/data/golden_decodes.json``; run it only when a change
is meant to alter the decoded bytes (and say so in the commit), never to make a failing test pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

import dpfusion
from dpfusion.imageio import load_image

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden_decodes.json"
CROPS = (("kodim01.png", 200, 300), ("kodim23.png", 100, 250))  # (file, top, left) of a 96x128 crop
RATES = (0.0, 4.0)
TAUS = (1.0, 0.5, 0.0)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_hashes(kodak: Path = KODAK) -> dict[str, dict[str, str]]:
    """``{"kodim01.png@rate0": {"dpf": sha256, "tau1": sha256, ...}}`` for the shipped ``dial`` mode.

    One CPU thread, as in the test suite: the fusion module's float sums (tau < 1) depend on how
    torch splits them across threads; the base codec's decode (tau = 1) does not.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _hashes(dpfusion.load(), kodak)
    finally:
        torch.set_num_threads(threads)


def _hashes(model: dpfusion.Model, kodak: Path) -> dict[str, dict[str, str]]:
    hashes: dict[str, dict[str, str]] = {}
    for name, top, left in CROPS:
        crop = load_image(kodak / name)[top : top + 96, left : left + 128]
        for rate in RATES:
            data = model.compress(crop, quality=rate)
            images = model.decompress_many(data, list(TAUS))
            entry = {"dpf": _digest(data)}
            entry.update({f"tau{tau:g}": _digest(image.tobytes()) for tau, image in zip(TAUS, images, strict=True)})
            hashes[f"{name}@rate{rate:g}"] = entry
    return hashes


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(decode_hashes(), indent=1) + "\n")
