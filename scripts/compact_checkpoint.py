"""Shrink a training checkpoint so it can be committed: optimizer moments to bfloat16.

    python scripts/compact_checkpoint.py runs/base/checkpoint.pt checkpoints/base.pt

Weights, step and RNG states stay exact; Adam's moments lose precision beyond
bfloat16's 8 bits, which a continuing run absorbs within a few steps (PyTorch casts
them back to the parameters' dtype on load). To continue on a new machine:
copy the file to RUN_DIR/checkpoint.pt and run the same `dpfusion train ... --resume`.
"""

from __future__ import annotations

import argparse

import torch

from dpfusion.train.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    args = parser.parse_args()
    state = load_checkpoint(args.source)
    for slot in state["optimizer"]["state"].values():
        for key, value in slot.items():
            if key != "step" and torch.is_tensor(value) and value.is_floating_point():
                slot[key] = value.to(torch.bfloat16)
    save_checkpoint(args.target, state)
    print(f"{args.target}: step {state['step']}")


if __name__ == "__main__":
    main()
