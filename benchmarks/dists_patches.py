"""DISTS of every decoded group of a sweep, on one 256x256 patch per image (the centre one).

    python benchmarks/dists_patches.py DATASET SWEEP.images [-o dists.json] [--groups 'dpfusion/*/tau0' ...]

DISTS runs VGG-16 twice per image: on these 2 cores a Kodak image at full resolution takes about
19 s, so a report with every rate, two taus and two baselines would need hours. Its cost is
proportional to the pixels scored, so this script scores the central 256x256 patch of each image
(one sixth of a Kodak image): the same patch for every group, so groups compare like for like.
It reads the PNGs that ``dpfusion eval`` stored for FID/KID (``OUT.images/``): nothing is decoded
again. Prints mean DISTS and its standard error over images per group; with ``-o``, groups already
in that file with the same decoded bytes are not scored again (the reproduction calls ``score_store`` the same way).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import sys
from pathlib import Path

import torch

from dpfusion.atomic import atomic_path
from dpfusion.imageio import load_image, to_tensor
from dpfusion.metrics import METRICS

PATCH = 256


def centre_patch(image: torch.Tensor, size: int = PATCH) -> torch.Tensor:
    """The central ``size`` x ``size`` patch of a (1, 3, H, W) tensor (the whole image when smaller)."""
    height, width = image.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[..., top : top + size, left : left + size]


def groups(store: Path, patterns: list[str] | None = None) -> list[Path]:
    """The folders of the image store that hold decoded PNGs and match a pattern (all without), sorted."""
    found = sorted({path.parent for path in store.rglob("*.png")})
    names = [folder.relative_to(store).as_posix() for folder in found]
    chosen = zip(found, names, strict=True)
    return [f for f, n in chosen if not patterns or any(fnmatch.fnmatch(n, p) for p in patterns)]


def digest(folder: Path) -> str:
    """SHA-256 over the group's PNG bytes: a cached score is reused only for the very same decodes."""
    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.png")):
        sha.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()[:16]


def score_group(dataset: Path, folder: Path) -> list[float]:
    """DISTS of each decoded image of the folder against its original, on the centre patch."""
    values = []
    for decoded in sorted(folder.glob("*.png")):
        originals = [p for p in dataset.rglob(decoded.stem + ".*") if p.is_file()]
        if len(originals) != 1:
            raise SystemExit(f"dists_patches: no unique original for {decoded.name} under {dataset}")
        reference = centre_patch(to_tensor(load_image(originals[0])))
        candidate = centre_patch(to_tensor(load_image(decoded)))
        with torch.inference_mode():
            values.append(float(METRICS["dists"](candidate, reference)[0]))
    return values


def summary(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    stderr = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1) / len(values))
    return {"images": len(values), "dists": mean, "stderr": stderr}


def score_store(dataset: Path, store: Path, patterns: list[str] | None, known: dict[str, dict]) -> dict[str, dict]:
    """DISTS summaries of every matching group, reusing the ``known`` ones; printed as they come."""
    results = {}
    print(f"{'group':40s} {'images':>6s} {'DISTS':>8s} {'s.e.':>7s}", flush=True)
    for folder in groups(store, patterns):
        name, key = folder.relative_to(store).as_posix(), digest(folder)
        cached = known.get(name)
        results[name] = (
            cached
            if cached and cached.get("digest") == key
            else {
                **summary(score_group(dataset, folder)),
                "digest": key,
            }
        )
        row = results[name]
        print(f"{name:40s} {row['images']:6d} {row['dists']:8.4f} {row['stderr']:7.4f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("store", type=Path, help="the OUT.images folder of a `dpfusion eval` run with fid or kid")
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--groups", nargs="*", help="shell patterns of group folders (default: every group)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.store.is_dir():
        sys.exit(f"dists_patches: error: no image store at {args.store}")
    known = json.loads(args.output.read_text())["groups"] if args.output and args.output.is_file() else {}
    results = score_store(args.dataset, args.store, args.groups, known)
    if args.output:
        write(args.output, results)


def write(path: Path, results: dict[str, dict]) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"patch": PATCH, "groups": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
