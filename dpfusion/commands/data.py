"""``dpfusion data prepare OUT_DIR``: assemble the training photos on a fresh machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpfusion.train.data_sources import DEBIAN_SOURCES, TRAIN_DIR, VALIDATION_DIR, prepare_training_folder

SHARED_TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train"


def run(args: argparse.Namespace) -> None:
    shared = None if args.no_shared else args.shared
    written = prepare_training_folder(args.output, shared, debian=not args.no_debian, max_side=args.max_side)
    held_out = sum(1 for path in written if path.parent.parent.name == VALIDATION_DIR)
    print(
        f"{len(written) - held_out} training photos in {Path(args.output) / TRAIN_DIR}, "
        f"{held_out} validation photos in {Path(args.output) / VALIDATION_DIR}"
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="training data")
    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("prepare", help="write the training photos as PNGs into OUT_DIR")
    p.add_argument("output")
    p.add_argument("--shared", default=str(SHARED_TRAIN), help="the project's shared training photos")
    p.add_argument("--no-shared", action="store_true", help="skip the shared photos")
    p.add_argument(
        "--no-debian",
        action="store_true",
        help=f"skip the Debian photo packages ({', '.join(s.package for s in DEBIAN_SOURCES)})",
    )
    p.add_argument("--max-side", type=int, default=1024, help="longest side after downscaling")
    p.set_defaults(run=run)
