"""Export the fusion module of a (possibly interrupted) training run: ``python scripts/export_fusion.py RUN OUT``."""

from __future__ import annotations

import argparse

from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.train.export import export_fusion_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of `dpfusion train fusion` (its checkpoint.pt)")
    parser.add_argument("out", help="folder to write fusion.safetensors and fusion.json into")
    args = parser.parse_args()
    print(export_fusion_checkpoint(args.run, args.out, load_codec(DEFAULT_NAME, None, None)))


if __name__ == "__main__":
    main()
