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
from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.codecs.loading import DEFAULT_DIR, DEFAULT_NAME, gain_model_from_config
from dpfusion.train.checkpoint import load_checkpoint
from dpfusion.train.export import CODEC_WEIGHTS, final_weights, save_weights


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
    if args.half:
        model = model.half().float()
    model.update(force=True)
    DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if args.half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    description = {"N": config["N"], "M": config["M"], "lambdas": config["lambdas"]}
    save_weights(DEFAULT_DIR, CODEC_WEIGHTS, "codec.json", tensors, description)
    codec = CodecAdapter(model, DEFAULT_NAME, args.rate)
    manifest = {
        "base": {
            **description,
            "weights": CODEC_WEIGHTS,
            "default_rate": args.rate,
            "trained_steps": int(state["step"]),
        },
        "fingerprint": codec.fingerprint.hex(),
    }
    if args.fusion:
        for name in ("fusion.safetensors", "fusion.json"):
            shutil.copyfile(Path(args.fusion) / name, DEFAULT_DIR / name)
    with atomic_path(DEFAULT_DIR / "config.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    print(f"exported step {state['step']} to {DEFAULT_DIR} (fingerprint {codec.fingerprint.hex()})")


if __name__ == "__main__":
    main()
