"""The default model's files and decodes of a few Kodak crops: the reference the golden test checks.

``python -m tests.golden`` rewrites ``tests/data/golden_decodes.json``; run it only when a change
is meant to alter the decoded bytes (and say so in the commit), never to make a failing test pass.

What is stored, and why not a hash of every decoded byte: the entropy-coded strings are exact
integers on every machine and are hashed; the decoded images come from float convolutions whose
last bit depends on the CPU's vector instructions (an AVX-512 machine and an AVX2 one differ by
one level in a few pixels of 36,864), so each image is stored as its sums over 8x8 blocks, which
such a difference moves by a level or two and any change of the decoder by far more; the
sender's dial codes come from LPIPS of those decodes, so they may move by one code step.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

import dpfusion
from dpfusion.bitstream import DIAL_CODE_STEPS, unpack
from dpfusion.imageio import load_image

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden_decodes.json"
CROPS = (("kodim01.png", 200, 300), ("kodim23.png", 100, 250))  # (file, top, left) of a 96x128 crop
RATES = (0.0, 4.0)
TAUS = (1.0, 0.5, 0.0)
BLOCK = 8


def block_sums(image: np.ndarray) -> list[int]:
    """Sums of each channel over 8x8 blocks, row-major: a fingerprint that last-bit float noise barely moves."""
    h, w, c = image.shape
    blocks = image.astype(np.int64).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c)
    return blocks.sum(axis=(1, 3)).ravel().tolist()


NOISE_LEVELS = 4
"""A block sum may move by this many levels (some pixels one level off) and still be the same decode."""
NOISE_BLOCKS = 0.02
"""... in at most this share of the blocks."""


def same_decode(stored: list[int], got: list[int]) -> bool:
    """Whether two block-sum fingerprints differ only by last-bit float noise."""
    diff = np.abs(np.asarray(stored) - np.asarray(got))
    return len(stored) == len(got) and diff.max() <= NOISE_LEVELS and np.mean(diff > 0) <= NOISE_BLOCKS


def mismatches(stored: dict[str, dict], got: dict[str, dict]) -> list[str]:
    """What differs beyond the noise the module docstring describes; empty when the decodes are the stored ones."""
    if stored.keys() != got.keys():
        return [f"crops {sorted(got)} instead of {sorted(stored)}"]
    out = []
    for key, entry in stored.items():
        new = got[key]
        if entry["strings"] != new["strings"]:
            out.append(f"{key}: entropy-coded strings differ")
        if (entry["dial"] is None) != (new["dial"] is None) or (
            entry["dial"] is not None and max(abs(a - b) for a, b in zip(entry["dial"], new["dial"], strict=True)) > 1
        ):
            out.append(f"{key}: dial codes {new['dial']} instead of {entry['dial']}")
        out += [f"{key}: {tau} decodes differently" for tau in entry if tau.startswith("tau")
                and not same_decode(entry[tau], new[tau])]  # fmt: skip
    return out


def decode_references(kodak: Path = KODAK) -> dict[str, dict]:
    """``{"kodim01.png@rate0": {"strings": sha256, "dial": codes, "tau1": block sums, ...}}`` for the shipped
    ``dial`` mode with the sender's per-image dial (the default), the adapter in float32 (``auto`` is
    machine-dependent), one CPU thread, as in the test suite."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _references(dpfusion.load(precision="fp32"), kodak)
    finally:
        torch.set_num_threads(threads)


def _references(model: dpfusion.Model, kodak: Path) -> dict[str, dict]:
    references: dict[str, dict] = {}
    for name, top, left in CROPS:
        crop = load_image(kodak / name)[top : top + 96, left : left + 128]
        for rate in RATES:
            data = model.compress(crop, quality=rate)
            file = unpack(data)
            images = model.decompress_many(data, list(TAUS))
            entry: dict = {"strings": hashlib.sha256(b"".join(file.strings)).hexdigest()}
            entry["dial"] = None if file.dial is None else [round(w**0.5 * DIAL_CODE_STEPS) for w in file.dial]
            entry.update({f"tau{tau:g}": block_sums(image) for tau, image in zip(TAUS, images, strict=True)})
            references[f"{name}@rate{rate:g}"] = entry
    return references


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(decode_references()) + "\n")
