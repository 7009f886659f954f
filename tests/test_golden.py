"""Behaviour unchanged: the default model encodes and decodes Kodak crops to the stored references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden import GOLDEN, KODAK, block_sums, decode_references, mismatches, same_decode


@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak not found at {KODAK}")
def test_default_model_decodes_kodak_to_the_stored_references(metric_weights):
    assert mismatches(json.loads(GOLDEN.read_text()), decode_references()) == []


def test_the_fingerprint_forgives_last_bit_noise_and_nothing_more():
    image = np.random.default_rng(0).integers(10, 240, (96, 128, 3), dtype=np.uint8)
    stored = block_sums(image)
    noisy = image.copy()
    noisy[5, 7, 1] += 1
    noisy[60, 100, 2] -= 1
    assert same_decode(stored, block_sums(noisy))
    brighter = image + 1  # one level everywhere: what a blend weight off by a few hundredths does
    assert not same_decode(stored, block_sums(brighter))
    patch = image.copy()
    patch[:8, :8] += 5  # one block changed by five levels
    assert not same_decode(stored, block_sums(patch))


@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak not found at {KODAK}")
def test_bf16_blocks_decode_within_a_level_of_the_float32_references():
    """The shipped module's blocks in bf16 (what ``auto`` picks on AMX CPUs and GPUs) against float32, on real
    content: a level or two where the blocks act, tau = 1 untouched."""
    from dpfusion.api import load
    from dpfusion.imageio import load_image

    crop = load_image(KODAK / "kodim23.png")[100:196, 250:378]
    full, low = load(quality=0.0, precision="fp32", image_dial=False), load(quality=0.0, precision="bf16")
    data = full.compress(crop)
    taus = [1.0, 0.5, 0.0]
    pairs = zip(full.decompress_many(data, taus), low.decompress_many(data, taus), strict=True)
    levels = [np.abs(a.astype(int) - b.astype(int)) for a, b in pairs]
    assert levels[0].max() == 0, "tau = 1 must stay the float32 base codec bit for bit"
    assert levels[2].max() > 0, "the bf16 blocks were not used"
    assert max(d.max() for d in levels) <= 2 and max(d.mean() for d in levels) < 0.1
