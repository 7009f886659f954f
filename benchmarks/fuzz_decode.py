"""End-to-end fuzzer: mutated .dpf files, CRC recomputed, so that they reach the entropy decoder.

    python benchmarks/fuzz_decode.py [--runs 100000] [--seconds 600] [--seed 0] [--max-side 128]

A plain seeded mutation loop, not atheris: atheris guides by the coverage of Python code
and cannot see inside CompressAI's C++ rANS decoder, where the crashes were. Each run
takes a valid file of the default codec, applies 1-3 structured mutations (bit flips,
truncations to 0-12 bytes or anywhere, appended or random bytes, fewer or more strings,
another image size or rate, raw header bytes), recomputes the CRC and runs what
``Model.decompress`` runs up to the latent: parse, size limit, fingerprint, string checks,
entropy decoding (``decode_latent``; ``g_s`` is left out, it never sees file bytes).

Runs go in forked children of ``CHUNK`` runs: a segfault ends one child, is counted and
its input saved (run i is rebuilt from ``--seed`` and i alone), and the session goes on;
a run stuck for ``WEDGED_SECONDS`` is killed and counted as a hang. The decoder's pixel
limit is lowered to ``--max-side`` squared so that a run takes milliseconds; headers
above it are refused, which is counted too. Prints runs, refusals, crashes, hangs over
10 s and peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import struct
import sys
import time
import warnings
import zlib
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import Tally  # noqa: E402

from dpfusion import container, imageio  # noqa: E402
from dpfusion.bitstream import MAX_STRINGS, DpfFile, pack, unpack  # noqa: E402
from dpfusion.codecs.adapter import CodecAdapter, Encoded  # noqa: E402
from dpfusion.codecs.loading import load_codec  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402

CHUNK = 2000
WEDGED_SECONDS = 60.0
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
SEED_SIZES = ((64, 64), (48, 80), (64, 128), (40, 40))
"""Tiny seeds: a run then costs milliseconds, and every mutation still reaches the rANS decoder."""


def seed_files(codec: CodecAdapter) -> list[DpfFile]:
    """Valid files of a few sizes and rates: crops of Kodak photos when present, else synthetic images."""
    photos = sorted(KODAK.glob("*.png"))[:4]
    files = []
    for index, (height, width) in enumerate(SEED_SIZES):
        if photos:
            image = imageio.load_image(photos[index % len(photos)])[:height, :width]
        else:
            rng = np.random.default_rng(index)
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        rated = codec.with_quality(index % 6) if codec.variable_rate else codec
        files.append(unpack(container.compress(rated, image)))
    return files


def _mutate_strings(strings: list[bytes], rng: random.Random) -> list[bytes]:
    pick = rng.randrange(len(strings))
    target = bytearray(strings[pick])
    op = rng.randrange(6)
    if op == 0 and target:
        for _ in range(rng.randint(1, 8)):
            target[rng.randrange(len(target))] ^= 1 << rng.randrange(8)
    elif op == 1:  # mostly whole words, which pass the string checks and reach the decoder
        cut = rng.choice((rng.randrange(13), rng.randrange(len(target) + 1), 4 * rng.randrange(len(target) // 4 + 1)))
        target = target[:cut]
    elif op == 2:
        target += rng.randbytes(rng.choice((rng.randrange(1, 64), 4 * rng.randrange(1, 16))))
    elif op == 3:
        target = bytearray(rng.randbytes(len(target)))
    elif op == 4 and len(strings) < MAX_STRINGS:
        strings = strings + [rng.choice(strings + [rng.randbytes(rng.randrange(24))])]
    elif op == 5 and len(strings) > 1:
        del strings[rng.randrange(len(strings))]
        return strings
    strings[pick] = bytes(target)
    return strings


def make_input(files: list[DpfFile], seed: int, index: int, max_side: int) -> bytes:
    """Run ``index``'s file: a function of (seed, index) only, so any crash can be rebuilt."""
    rng = random.Random(f"{seed}:{index}")
    file = rng.choice(files)
    strings, raw = list(file.strings), False
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        if op <= 2:
            strings = _mutate_strings(strings, rng)
        elif op == 3:
            side = rng.choice((max_side, 2 * max_side))  # above the limit a quarter of the time
            file = replace(file, height=rng.randint(1, side), width=rng.randint(1, max_side))
        elif op == 4:
            file = replace(file, quality=rng.choice((0.0, 5.0, rng.uniform(0, 5), rng.uniform(0, 65))))
        else:
            raw = True
    body = bytearray(pack(replace(file, strings=tuple(strings)))[:-4])
    if raw:  # header bytes the structured mutations do not reach: codec id, fingerprint, varints
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(min(len(body), 40))] = rng.randrange(256)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def decode(codec: CodecAdapter, data: bytes) -> None:
    """``Model.decompress`` up to the latent: every step that reads the file's bytes."""
    file = container.parse_for_decoding(data)
    container.check_fingerprint(codec, file)
    if file.codec != codec.name:
        raise DPFusionError(f"file was written by {file.codec}")
    codec.with_quality(file.quality).decode_latent(Encoded(file.strings, (file.height, file.width)))


def _child(conn: Connection, codec: CodecAdapter, files: list[DpfFile], args: argparse.Namespace, start: int,
           count: int, deadline: float, current) -> None:  # fmt: skip
    tally = Tally("child", "", args.crash_dir)
    for index in range(start, start + count):
        if time.time() > deadline:
            break
        current.value = index
        data = make_input(files, args.seed, index, args.max_side)
        began = time.perf_counter()
        refused = False
        try:
            decode(codec, data)
        except DPFusionError:
            refused = True
        except Exception as exc:  # the very thing a fuzzer is for: anything but a clean refusal
            tally.crash(data, type(exc).__name__, str(index))
        tally.record(time.perf_counter() - began, refused)
    current.value = -1
    conn.send(tally)


def _supervise(child, conn: Connection, current) -> tuple[Tally | None, str]:
    """Wait for a child; (its tally, "") when it finished, (None, why) when it died or wedged."""
    last, since = current.value, time.time()
    while child.is_alive() or conn.poll():
        if conn.poll(1.0):
            tally = conn.recv()
            child.join()
            return tally, ""
        if current.value != last:
            last, since = current.value, time.time()
        elif time.time() - since > WEDGED_SECONDS:
            child.kill()
            child.join()
            return None, "hang"
    return None, f"signal {-child.exitcode}" if child.exitcode and child.exitcode < 0 else f"exit {child.exitcode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=128, help="pixel limit of the decoder: this side squared")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = load_codec()
    files = seed_files(codec)
    imageio.MAX_PIXELS = args.max_side**2
    _ = codec.symbols_per_cell  # computed once here, not in every child
    tally = Tally("fuzz_decode", "seeded structured mutations", args.crash_dir)
    context = multiprocessing.get_context("fork")
    deadline, index = time.time() + args.seconds, 0
    while index < args.runs and time.time() < deadline:
        count = min(CHUNK, args.runs - index)
        current, (receive, send) = context.Value("q", index), context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(send, codec, files, args, index, count, deadline, current))
        child.start()
        result, why = _supervise(child, receive, current)
        if result is not None:
            tally.merge(result)
            index += result.runs
            continue
        bad = current.value  # runs before it in this chunk finished; their refusals are not known
        tally.runs += bad - index + 1
        tally.hangs += why == "hang"
        tally.crash(make_input(files, args.seed, bad, args.max_side), why, str(bad))
        index = bad + 1
    print(tally.report())


if __name__ == "__main__":
    main()
