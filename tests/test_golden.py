"""Behaviour unchanged: the default model encodes and decodes Kodak crops to the stored bytes."""

from __future__ import annotations

import json

import pytest

from tests.golden import GOLDEN, KODAK, decode_hashes


@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak not found at {KODAK}")
def test_default_model_decodes_kodak_to_the_stored_bytes():
    stored = json.loads(GOLDEN.read_text())
    assert decode_hashes() == stored
