"""Export a (possibly interrupted) run's fusion module: ``python scripts/export_fusion.py RUN OUT [--half]``."""

from __future__ import annotations

import argparse

from dpfusion.codecs.loading import DEFAULT_NAME, load_codec
from dpfusion.train.export import export_fusion_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of `dpfusion train fusion` (its checkpoint.pt)")
    parser.add_argument("out", help="folder to write fusion.safetensors and fusion.json into")
    parser.add_argument("--half", action="store_true", help="store the weights in fp16 (half the file)")
    args = parser.parse_args()
    print(export_fusion_checkpoint(args.run, args.out, load_codec(DEFAULT_NAME, None, None), args.half))


if __name__ == "__main__":
    main()
