"""Does a module calibration carry over to photos unlike those it was made on? Measured on validation photos.

The module's dial is calibrated on the mean blend curve of a photo set; the per-image dial is fitted
to each photo by its sender. This holds out one source folder of the validation photos at a time
(wallpapers against photographs), calibrates the module's dial on the rest exactly as ``dpfusion
calibrate`` does (the mean LPIPS of the blend at the probe weights, inverted at its 21 knots), and
measures both dials on the held-out folder: evenness at tau = 0.1, ..., 0.9, the interior's LPIPS above
the common-weight blend (share of the range) and the positions beaten. Read off the curves that
``image_dial_clamp.py`` measures (same cache); Kodak is not used.

    python benchmarks/dial_transfer.py /work/traindata/validation --rates 0,1,2 --cache clamp_012.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from image_dial_clamp import floored, measure, verdict_cell  # noqa: E402
from image_dial_probes import DENSE, fitted, validation_arrays  # noqa: E402

from dpfusion.bitstream import DIAL_TAUS  # noqa: E402
from dpfusion.eval.calibration import KNOTS  # noqa: E402
from dpfusion.eval.sweep import list_images  # noqa: E402
from dpfusion.fusion.image_dial import PROBE_WEIGHTS, BlendOptimum, even_weights  # noqa: E402

PROBES = [DENSE.index(w) for w in PROBE_WEIGHTS]


def calibrated(curves: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """The module dial ``dpfusion calibrate`` would store for these photos (curves: (photos, DENSE, 2))."""
    return KNOTS, np.asarray(even_weights(PROBE_WEIGHTS, curves[:, PROBES, 0].mean(axis=0), KNOTS, "calibration"))


def held_out_rows(arrays: dict[str, np.ndarray], groups: np.ndarray, j: int) -> dict[str, str]:
    """Per held-out folder at rate index ``j``: the module calibrated on the other folders, and the fit."""
    rows = {}
    for group in sorted(set(groups)):
        held, rest = groups == group, groups != group
        curves = arrays["curves"][held, j]
        module = calibrated(arrays["curves"][rest, j])
        optima = map(BlendOptimum, arrays["optimal"][held, j], arrays["spread"][held, j])
        fits = [floored(fitted(c[:, 0], PROBE_WEIGHTS, DIAL_TAUS, module[1]), o.psnr_floor()) for c, o in
                zip(curves, optima, strict=True)]  # fmt: skip
        label = f"{group} ({held.sum()} photos)"
        rows[f"{label}, module calibrated on the other {rest.sum()}"] = verdict_cell(curves, [module] * len(curves))
        rows[f"{label}, per image (floored)"] = verdict_cell(curves, fits)
    return rows


def main() -> None:
    rates, arrays = validation_arrays(__doc__, measure)
    folder = Path(sys.argv[1])
    groups = np.array([Path(entry.path).relative_to(folder).parts[0] for entry in list_images(str(folder))])
    print(f"{len(groups)} photos; evenness / interior minus blend / positions beaten on the held-out folder")
    table: dict[str, list[str]] = {}
    for j in range(len(rates)):
        for name, cell in held_out_rows(arrays, groups, j).items():
            table.setdefault(name, []).append(cell)
    print("held out | " + " | ".join(f"rate {r:g}" for r in rates))
    for name, cells in table.items():
        print(f"{name} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
