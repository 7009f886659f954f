"""``dpfusion`` command line: every failure the user can cause ends in one line and exit code 1."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

import torch

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from dpfusion.commands import (  # noqa: E402
    bdrate,
    calibrate,
    compress,
    data,
    decompress,
    demo,
    eval,
    info,
    plot,
    serve,
    train,
    weights,
)
from dpfusion.errors import DPFusionError  # noqa: E402

COMMANDS = (demo, compress, decompress, info, train, data, calibrate, eval, bdrate, plot, weights, serve)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are a DPFusionError, so a bad option ends like every other user error.

    argparse would print its usage and exit 2; sub-command parsers are built from the same class.
    """

    def error(self, message: str) -> NoReturn:
        raise DPFusionError(f"{' '.join(message.split())} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpfusion", description="Decoder-side fidelity/realism dial for learned image codecs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def _out_of_memory(exc: BaseException) -> bool:
    """The allocator's failures, CPU or GPU; any other RuntimeError is a bug and keeps its traceback."""
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = lambda message, *_rest, **_kw: f"dpfusion: warning: {message}\n"
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except DPFusionError as exc:
        print(f"dpfusion: error: {exc}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        print(f"dpfusion: error: out of memory ({_first_line(exc)}): try a smaller image", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dpfusion: interrupted", file=sys.stderr)
        return 130
    return 0
