"""The container's strings, checked and guarded before CompressAI's rANS decoder reads them.

CompressAI's decoder (``cpp_exts/rans/rans_interface.cpp``) reads 32-bit words from the
string with no bounds check: it decodes as many symbols as the latent has, whatever the
string holds, so a truncated or forged string makes it read far past its end (a segfault
for a 12-byte string on a Kodak-sized image). Two defences, both before any decoding:

- ``check_strings``: as many strings as the codec writes, each a whole number of 32-bit
  words and at least the 8 bytes of the flushed 64-bit rANS state;
- ``guarded``: each string followed by enough zero words that no input, valid or not,
  can make the decoder read beyond them. A valid string is decoded exactly as before: its
  decoder stops at its last word and never reaches the guard.

The guard's size is a worst case over what one decoded symbol can read. Advancing the
state reads at most one word. Bypass-coded values read 4-bit groups: a read appends one
word (8 groups) and happens at most once per 7 groups; the loop counting the groups runs
while it sees the group 15, which needs non-zero bits: at most 16 groups of the 64-bit
state plus 8 per word read from the string (the guard's zero words end it at once), and
the value then read has at most 15 groups per counted one. Summed over ``S`` symbols and
a string of ``D`` words that is at most ``42 S + 19 D`` words; the guard rounds up.
"""

from __future__ import annotations

from collections.abc import Sequence

from dpfusion.errors import DPFusionError

RANS_WORD_BYTES = 4
RANS_MIN_BYTES = 8
"""``Rans64EncFlush`` writes the whole 64-bit state: a valid string is never shorter."""
GUARD_WORDS_PER_SYMBOL = 44
GUARD_WORDS_PER_WORD = 20


def check_strings(strings: Sequence[bytes], expected: int, codec: str) -> None:
    """Refuse strings that this codec's entropy coder cannot have written, before any decoding."""
    if len(strings) != expected:
        raise DPFusionError(f"corrupt file: {len(strings)} entropy-coded strings, {codec} writes {expected}")
    for index, string in enumerate(strings):
        if len(string) < RANS_MIN_BYTES or len(string) % RANS_WORD_BYTES:
            raise DPFusionError(
                f"corrupt file: string {index} is {len(string)} bytes; {codec}'s entropy coder writes "
                f"whole {RANS_WORD_BYTES}-byte words, at least {RANS_MIN_BYTES} bytes"
            )


def guard_bytes(string_bytes: int, symbols: int) -> int:
    """Zero bytes to append so that decoding ``symbols`` symbols never reads past the string."""
    words = GUARD_WORDS_PER_SYMBOL * symbols + GUARD_WORDS_PER_WORD * (string_bytes // RANS_WORD_BYTES) + 2
    return RANS_WORD_BYTES * words


def guarded(strings: Sequence[bytes], symbols: Sequence[int]) -> list[bytes]:
    """Each string followed by its guard; ``symbols[i]`` is how many symbols the decoder takes from string ``i``."""
    return [string + bytes(guard_bytes(len(string), count)) for string, count in zip(strings, symbols, strict=True)]
