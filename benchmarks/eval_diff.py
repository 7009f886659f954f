"""Per-image difference of two ``dpfusion eval`` results on the same images, rates and taus.

    python benchmarks/eval_diff.py A.json B.json

For each rate and tau present in both: the mean of B - A over the images for every metric they share, the
largest |B - A|, and the spread of the metric itself across the images (the scale a difference is read
against). Made for the adapter-precision check (fp32 against bf16), usable for any two decodes of one set.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def _records(path: Path) -> tuple[dict[tuple, dict], list[str]]:
    result = json.loads(path.read_text())
    keyed = {(r["image"], r["rate"], r["tau"]): r for r in result["per_image"] if r["codec"] == "dpfusion"}
    return keyed, list(result["metrics"])


def differences(a: Path, b: Path) -> dict[tuple[float, float, str], np.ndarray]:
    """``(rate, tau, metric) -> (B - A per image, A per image)`` stacked as a (2, images) array."""
    first, metrics = _records(a)
    second, others = _records(b)
    pairs: dict[tuple[float, float, str], list[tuple[float, float]]] = defaultdict(list)
    for key in sorted(first.keys() & second.keys()):
        for metric in (m for m in metrics if m in others):
            pairs[(key[1], key[2], metric)].append((second[key][metric] - first[key][metric], first[key][metric]))
    return {key: np.asarray(values).T for key, values in pairs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    table = differences(args.a, args.b)
    if not table:
        raise SystemExit("dpfusion: error: the two results share no (image, rate, tau) record")
    print(f"{'rate':>5}{'tau':>6}  {'metric':<12}{'images':>7}{'mean B-A':>12}{'max |B-A|':>12}{'spread of A':>13}")
    for (rate, tau, metric), (delta, values) in sorted(table.items()):
        print(f"{rate:>5g}{tau:>6g}  {metric:<12}{delta.size:>7}{delta.mean():>+12.5f}"
              f"{np.abs(delta).max():>12.5f}{values.std():>13.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
