"""Is the decoded latent the same whatever the thread count? ``y_hat`` hashes at 1, 2 and 4 threads.

    python benchmarks/latent_determinism.py [--kodak DIR] [--rates 0,1,2,3,4,5] [--threads 1,2,4]
                                            [--pixel-rate 3] [--tau0-images 24] [--float-control]

Every Kodak image is compressed once per rate (one thread), then its ``y_hat`` is entropy-decoded
at each thread count and hashed (SHA-256 of the float32 bytes). With ``--float-control`` the same
is done, in the same run, with the float hyper-synthesis (what container version 1 used), so the
two columns compare side by side. At ``--pixel-rate`` the tau = 1 image (``g_s``) and the tau = 0
image are decoded at the first two thread counts and compared value by value. Nothing is chosen
on Kodak here: this is a check, not a tuning run.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch
from integer_entropy_cost import float_twin

import dpfusion
from dpfusion.codecs.adapter import CodecAdapter, Encoded
from dpfusion.codecs.loading import load_codec
from dpfusion.imageio import load_image, to_tensor

ROOT = Path(__file__).resolve().parents[1]


def _latent_hashes(codec: CodecAdapter, encoded: Encoded, threads: list[int]) -> set[str]:
    hashes = set()
    for count in threads:
        torch.set_num_threads(count)
        latent = codec.decode_latent(encoded)
        hashes.add(hashlib.sha256(latent.contiguous().numpy().tobytes()).hexdigest())
    return hashes


def _encode(codec: CodecAdapter, array: np.ndarray) -> Encoded:
    torch.set_num_threads(1)
    return codec.encode(to_tensor(array))


def _latent_table(photos: list[np.ndarray], rates: list[float], threads: list[int], control: bool) -> None:
    print(f"y_hat identical at {threads} threads, per rate (images whose hashes all agree / images)")
    for rate in rates:
        codec = load_codec(quality=rate)
        same = sum(len(_latent_hashes(codec, _encode(codec, a), threads)) == 1 for a in photos)
        line = f"  rate {rate:g}: integer {same}/{len(photos)}"
        if control:
            twin = float_twin(codec)
            agree = sum(len(_latent_hashes(twin, _encode(twin, a), threads)) == 1 for a in photos)
            line += f" | float h_s {agree}/{len(photos)}"
        print(line, flush=True)


def _differences(images: list[np.ndarray]) -> tuple[int, int, int]:
    a, b = (i.astype(np.int16) for i in images)
    diff = np.abs(a - b)
    return int(np.count_nonzero(diff)), int(diff.max()), diff.size


def _pixel_table(photos: list[np.ndarray], rate: float, threads: list[int], tau0_images: int) -> None:
    model = dpfusion.load(quality=rate)
    print(f"decoded pixels at rate {rate:g}, {threads[0]} against {threads[1]} threads (values that differ)")
    for tau, images in ((1.0, photos), (0.0, photos[:tau0_images])):
        totals = np.zeros(3, dtype=np.int64)
        worst = 0
        for array in images:
            torch.set_num_threads(1)
            data = model.compress(array)
            decoded = []
            for count in threads[:2]:
                torch.set_num_threads(count)
                decoded.append(model.decompress(data, tau=tau))
            differing, largest, size = _differences(decoded)
            totals += (differing, differing > 0, size)
            worst = max(worst, largest)
        print(
            f"  tau {tau:g}: {totals[0]} of {totals[2]} values differ, in {totals[1]}/{len(images)} images, "
            f"largest difference {worst}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--rates", default="0,1,2,3,4,5")
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--pixel-rate", type=float, default=3.0)
    parser.add_argument("--float-control", action="store_true")
    parser.add_argument("--tau0-images", type=int, default=24, help="images decoded at tau = 0 (the slow part)")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    paths = sorted(Path(args.kodak).glob("kodim*.png"))
    photos = [load_image(p) for p in paths]
    started = time.time()
    print(f"{len(photos)} images from {args.kodak}")
    _latent_table(photos, [float(r) for r in args.rates.split(",")], threads, args.float_control)
    _pixel_table(photos, args.pixel_rate, threads, args.tau0_images)
    print(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
