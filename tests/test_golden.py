"""Behaviour unchanged: the default model encodes and decodes Kodak crops to the stored references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden import GOLDEN, KODAK, block_sums, decode_references, mismatches, same_decode


@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak not found at {KODAK}")
def test_default_model_decodes_kodak_to_the_stored_references():
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
