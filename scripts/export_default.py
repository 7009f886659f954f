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
from dataclasses import replace
from pathlib import Path

from dpfusion.codecs.gain_hyperprior import GainMeanScaleHyperprior
from dpfusion.codecs.loading import DEFAULT_DIR, DEFAULT_NAME, RELEASE_NAME, ReleaseManifest, load_codec
from dpfusion.train.checkpoint import load_checkpoint
from dpfusion.train.export import CODEC_CONFIG, CODEC_WEIGHTS, final_weights
from dpfusion.weights_io import save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="run folder of `dpfusion train base`")
    parser.add_argument("--fusion", help="run folder of `dpfusion train fusion` (fusion.safetensors/json)")
    parser.add_argument("--rate", type=float, default=2.0, help="rate index used when none is given")
    parser.add_argument("--half", action="store_true", help="store the codec in fp16")
    args = parser.parse_args()

    path = Path(args.base) / "checkpoint.pt"
    state = load_checkpoint(path)
    model = GainMeanScaleHyperprior.from_document(json.loads(state["stage"]), str(path))
    model.load_state_dict(final_weights(state))
    parameters = {name for name, _ in model.named_parameters()}
    if args.half:  # parameters only: buffers (scale table, bounds) keep full precision
        for param in model.parameters():
            param.data = param.data.half().float()
    model.update(force=True)
    tensors = {k: (v.half() if args.half and k in parameters else v) for k, v in model.state_dict().items()}
    save_weights(DEFAULT_DIR, CODEC_WEIGHTS, CODEC_CONFIG, tensors, model)
    release = ReleaseManifest(CODEC_WEIGHTS, args.rate, int(state["step"]))
    release.save_config(DEFAULT_DIR / RELEASE_NAME)
    # The fingerprint of record is the one a user's load computes, from the files as shipped.
    release = replace(release, fingerprint=load_codec(DEFAULT_NAME).fingerprint.hex())
    if args.fusion:
        for name in ("fusion.safetensors", "fusion.json"):
            shutil.copyfile(Path(args.fusion) / name, DEFAULT_DIR / name)
    release.save_config(DEFAULT_DIR / RELEASE_NAME)
    print(f"exported step {state['step']} to {DEFAULT_DIR} (fingerprint {release.fingerprint})")


if __name__ == "__main__":
    main()
