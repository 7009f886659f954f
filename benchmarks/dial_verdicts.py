"""The dial issue's per-rate figures for one `dpfusion eval` result, without rerunning the whole reproduction.

``DIAL`` holds the dial's taus (0 and 1 included), ``BLEND`` the plain blend of the same two ends
(``--tau-mode linear``; its ends are taken from ``DIAL``). Prints, per rate, the evenness, the interior's
LPIPS above the blend at no lower PSNR (share of the range), how many positions lie above the sampled
blend's PSNR, and the positions beaten in PSNR and LPIPS both, as ``docs/REPRODUCTION.md`` tabulates them.

    python benchmarks/dial_verdicts.py results/default/image_dial.json results/default/blend.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpfusion.eval.dial_criteria import verdict  # noqa: E402
from dpfusion.eval.records import Results  # noqa: E402
from dpfusion.eval.results_io import load_results  # noqa: E402


def with_ends(blend: Results, dial: Results) -> Results:
    """The blend's interior curves plus the dial's tau = 0 and tau = 1 curves (the ends both share)."""
    ends = [c for c in dial.learned() if c.tau in (0.0, 1.0)]
    return Results(blend.name, [c for c in blend.curves if c.tau not in (0.0, 1.0)] + ends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dial", type=Path)
    parser.add_argument("blend", type=Path)
    args = parser.parse_args()
    dial = load_results(args.dial)
    blend = with_ends(load_results(args.blend), dial)
    rates = next(c for c in dial.learned() if c.tau == 1.0).rates
    print(f"{args.dial}: {len(dial.settings['images'])} images")
    print("rate | evenness | minus best blend | above the blend's PSNR | beaten positions")
    for rate in rates:
        v = verdict(dial, blend, rate)
        beaten = ", ".join(f"{a:g} (by {b:g})" for a, b in v.wasted) or "none"
        print(f"{rate:g} | {v.evenness:.3f} | {v.blend_gap:+.3f} | {v.beyond_blend} | {beaten}")


if __name__ == "__main__":
    main()
