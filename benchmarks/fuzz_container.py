"""Container fuzzer: any bytes through the .dpf parser and the decoder's size limit; only DPFusionError may come out.

    python benchmarks/fuzz_container.py [--seconds 60] [--runs N] [--seed 0] [--plain]

With atheris installed (``pip install atheris``) libFuzzer mutates the inputs, guided by
the coverage of ``dpfusion.bitstream``; without it, or with ``--plain``, a seeded loop of
byte mutations (flip, overwrite, insert, delete, truncate) does. Every input is parsed
twice, as it is and with its CRC recomputed, so mutations also reach the fields behind
the checksum. Any exception but DPFusionError is a crash: counted, its input saved, and
the session goes on. Prints runs, refusals, crashes, hangs over 10 s and peak RSS.
The entropy decoder is ``fuzz_decode.py``'s job.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import Tally  # noqa: E402

try:
    import atheris
except ImportError:  # the plain loop below needs nothing
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["dpfusion.bitstream"]):
        from dpfusion.bitstream import DpfFile, pack
else:
    from dpfusion.bitstream import DpfFile, pack
from dpfusion.codecs.registry import codec_names  # noqa: E402
from dpfusion.container import parse_for_decoding  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402


def seed_files() -> list[bytes]:
    """Valid files of every codec identifier, with 1 to 3 strings of a few lengths."""
    rng = random.Random(0)
    files = []
    for index, codec in enumerate(codec_names()):
        strings = tuple(rng.randbytes(rng.choice((0, 8, 100, 3000))) for _ in range(1 + index % 3))
        file = DpfFile(codec, index / 2, rng.randbytes(8), 1 + 97 * index, 1 + 300 * index, strings, index / 7)
        files.append(pack(file))
    return files


def with_crc(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4])) if len(data) >= 4 else data


def check(data: bytes, tally: Tally) -> None:
    """One run: parse the bytes as they are and with a valid CRC."""
    began, refused = time.perf_counter(), False
    for candidate in (data, with_crc(data)):
        try:
            parse_for_decoding(candidate)
        except DPFusionError:
            refused = True
        except Exception as exc:  # anything else is what the fuzzer looks for
            tally.crash(candidate, type(exc).__name__, str(tally.runs))
    tally.record(time.perf_counter() - began, refused)


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.randrange(5), rng.randrange(len(out) + 1)
        if op == 0 and pos < len(out):
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and pos < len(out):
            out[pos] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del out[pos : pos + rng.randint(1, 8)]
        else:
            del out[pos:]
    return bytes(out)


def run_plain(tally: Tally, done: Callable[[], bool], seed: int) -> None:
    rng, files = random.Random(seed), seed_files()
    while not done():
        check(mutate(rng.choice(files), rng), tally)


def run_atheris(tally: Tally, done: Callable[[], bool], seed: int) -> None:
    corpus = Path(tempfile.mkdtemp(prefix="dpf-corpus-"))
    for index, data in enumerate(seed_files()):
        (corpus / f"seed{index}.dpf").write_bytes(data)

    def one_input(data: bytes) -> None:
        check(data, tally)
        if done():  # libFuzzer never returns: report from here and leave
            print(tally.report(), flush=True)
            os._exit(0)

    atheris.Setup([sys.argv[0], f"-seed={seed + 1}", "-rss_limit_mb=4096", str(corpus)], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=10**12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="the seeded mutation loop even if atheris is installed")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    plain = args.plain or atheris is None
    tally = Tally("fuzz_container", "seeded byte mutations" if plain else "atheris", args.crash_dir)
    deadline = time.time() + args.seconds

    def done() -> bool:
        return tally.runs >= args.runs or time.time() >= deadline

    (run_plain if plain else run_atheris)(tally, done, args.seed)
    print(tally.report())


if __name__ == "__main__":
    main()
