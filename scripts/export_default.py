"""Export trained runs into the embedded default model (dpfusion/weights/default).

    python scripts/export_default.py --base runs/base [--fusion runs/fusion] [--rate 2]

With --half the codec is stored in fp16 (half the size); the fingerprint is taken
after the round trip, so files and fusion modules match the shipped weights. Train
the auxiliary encoder and fusion module against the exported codec (`--model default`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dpfusion.atomic import atomic_path
from dpfusion.codecs.loading import DEFAULT_DIR, DEFAULT_NAME, gain_model_from_config, load_codec
from dpfusion.train.checkpoint import load_checkpoint
from dpfusion.train.export import CODEC_WEIGHTS, final_weights
from dpfusion.weights_io import save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="run folder of `dpfusion train base`")
    parser.add_argument("--fusion", help="run folder of `dpfusion train fusion` (fusion.safetensors/json)")
    parser.add_argument("--rate", type=float, default=2.0, help="rate index used when none is given")
    parser.add_argument("--half", action="store_true", help="store the codec in fp16")
    args = parser.parse_args()

    state = load_checkpoint(Path(args.base) / "checkpoint.pt")
    config = json.loads(state["stage"])
    model = gain_model_from_config(config)
    model.load_state_dict(final_weights(state))
    parameters = {name for name, _ in model.named_parameters()}
    if args.half:  # parameters only: buffers (scale table, bounds) keep full precision
        for param in model.parameters():
            param.data = param.data.half().float()
    model.update(force=True)
    tensors = {k: (v.half() if args.half and k in parameters else v) for k, v in model.state_dict().items()}
    description = {"N": config["N"], "M": config["M"], "lambdas": config["lambdas"]}
    save_weights(DEFAULT_DIR, CODEC_WEIGHTS, "codec.json", tensors, description)
    manifest = {
        "base": {
            **description,
            "weights": CODEC_WEIGHTS,
            "default_rate": args.rate,
            "trained_steps": int(state["step"]),
        }
    }
    with atomic_path(DEFAULT_DIR / "config.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    # The fingerprint of record is the one a user's load computes, from the files as shipped.
    manifest["fingerprint"] = load_codec(DEFAULT_NAME).fingerprint.hex()
    if args.fusion:
        for name in ("fusion.safetensors", "fusion.json"):
            shutil.copyfile(Path(args.fusion) / name, DEFAULT_DIR / name)
    with atomic_path(DEFAULT_DIR / "config.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    print(f"exported step {state['step']} to {DEFAULT_DIR} (fingerprint {manifest['fingerprint']})")


if __name__ == "__main__":
    main()
