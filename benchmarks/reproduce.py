"""Reproduce the paper's claims on Kodak with the embedded default model, in one rerunnable command.

    python benchmarks/reproduce.py [--kodak ../shared/data/kodak] [--out results/default] [--images 24]

Runs (each sweep resumes from its journal when interrupted):
  1. rate x tau sweep, tau in {0, .3, .5, .8, 1}, 10 steps, with JPEG and WebP on the same images;
  2. 10 noise seeds at tau = 0 (stability);
  3. steps in {1, 2, 5, 10, 20, 50} at tau = 0;
  4. the paper's Variant-1 (fusion without diffusion and without the auxiliary encoder), when
     --variant1 names its trained folder (`dpfusion train fusion --variant direct ...`);
  5. the plots of 1 and 3, and the decode-latency benchmark;
then writes docs/REPRODUCTION.md: every claim next to the number measured here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.atomic import atomic_path  # noqa: E402
from dpfusion.cli import main as dpfusion  # noqa: E402
from dpfusion.codecs.loading import DEFAULT_DIR  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.eval.results import load_results  # noqa: E402
from dpfusion.metrics.bdrate import bd_quality, bd_rate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TAUS = (0.0, 0.3, 0.5, 0.8, 1.0)
STEPS = (1, 2, 5, 10, 20, 50)


def _run(argv: list[str]) -> None:
    print("$ dpfusion " + " ".join(argv), flush=True)
    if dpfusion(argv) != 0:
        raise SystemExit(f"dpfusion {argv[0]} failed")


def _curve(doc: dict[str, Any], kind: str = "dpfusion", tau: float | None = None, steps: int | None = None) -> dict:
    for curve in doc["curves"]:
        if (
            curve["kind"] == kind
            and (tau is None or curve["tau"] == tau)
            and (steps is None or curve["steps"] == steps)
        ):
            return curve
    raise SystemExit(f"no curve {kind} tau={tau} steps={steps} in the results")


def _xy(curve: dict, metric: str) -> tuple[list[float], list[float]]:
    sign = -1.0 if metric.startswith(("lpips", "dists")) else 1.0
    return curve["results"]["bpp"], [sign * v for v in curve["results"][metric]]


def _bd(fn, anchor: dict, test: dict, metric: str, unit: str) -> str:
    """A Bjontegaard delta as text, or why it is undefined (e.g. quality ranges that do not overlap)."""
    try:
        return f"{fn(_xy(anchor, metric), _xy(test, metric)):+.2f}{unit}"
    except DPFusionError as exc:
        spans = [f"{min(c['results'][metric]):.2f}-{max(c['results'][metric]):.2f}" for c in (anchor, test)]
        return f"undefined ({exc}; {metric} {spans[0]} vs {spans[1]})"


def _model_line() -> str:
    manifest = json.loads((DEFAULT_DIR / "config.json").read_text())
    return (
        f"Model: `dpfusion-default` (weights fingerprint {manifest['fingerprint']}), base codec trained "
        f"{manifest['base'].get('trained_steps', '?')} steps; see `docs/MODEL_CARD.md` for its training state."
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _latency(out: Path) -> str:
    text = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "decode_latency.py")], check=True, capture_output=True, text=True
    ).stdout
    (out / "latency.txt").write_text(text)
    return text


def _variant_rows(sweep: dict, variant: dict | None, rate: float) -> tuple[list[list[str]], str]:
    """PSNR / LPIPS by tau at one rate for the method and Variant-1, and whether each is monotone."""
    rows, verdicts = [], []
    for name, doc in (("method", sweep), ("Variant-1", variant)):
        if doc is None:
            continue
        cells = []
        for tau in TAUS:
            curve = _curve(doc, tau=tau)
            i = curve["rates"].index(rate)
            cells.append((curve["results"]["psnr"][i], curve["results"]["lpips_alex"][i]))
        rows.append([name, *[f"{p:.2f} / {q:.4f}" for p, q in cells]])
        psnr_monotone = all(a[0] < b[0] for a, b in zip(cells, cells[1:], strict=False))
        verdicts.append(f"{name}: PSNR {'rises' if psnr_monotone else 'does not rise'} monotonically with tau")
    return rows, "; ".join(verdicts)


def report(
    out: Path,
    sweep: dict,
    seeds: dict,
    steps: dict,
    variant: dict | None,
    latency: str,
    command: str,
    probe_rate: float,
) -> str:
    tau0, tau1 = _curve(sweep, tau=0.0), _curve(sweep, tau=1.0)
    jpeg, webp = _curve(sweep, "jpeg"), _curve(sweep, "webp")
    lpips_bd = _bd(bd_rate, tau1, tau0, "lpips_alex", "%")
    psnr_loss = [a - b for a, b in zip(tau1["results"]["psnr"], tau0["results"]["psnr"], strict=True)]
    rows = []
    for i, rate in enumerate(tau1["rates"]):
        row = [f"{rate:g}", f"{tau1['results']['bpp'][i]:.4f}"]
        for tau in TAUS:
            c = _curve(sweep, tau=tau)["results"]
            row.append(f"{c['psnr'][i]:.2f} / {c['lpips_alex'][i]:.4f}")
        rows.append(row)
    monotone = all(
        all(
            _curve(sweep, tau=a)["results"][m][i] < _curve(sweep, tau=b)["results"][m][i]
            for a, b in zip(TAUS, TAUS[1:], strict=False)
        )
        for i in range(len(tau1["rates"]))
        for m in ("psnr", "lpips_alex")
    )
    seed_curve = _curve(seeds, tau=0.0)
    seed_rows = [
        [
            f"{rate:g}",
            f"{seed_curve['results']['psnr'][i]:.3f} ± {seed_curve['seed_std']['psnr'][i]:.4f}",
            f"{seed_curve['results']['lpips_alex'][i]:.4f} ± {seed_curve['seed_std']['lpips_alex'][i]:.5f}",
        ]
        for i, rate in enumerate(seed_curve["rates"])
    ]
    step_rows = []
    for count in STEPS:
        c = _curve(steps, tau=0.0, steps=count)["results"]
        step_rows.append(
            [str(count), f"{c['psnr'][0]:.3f}", f"{c['lpips_alex'][0]:.4f}", f"{c['decoding_time'][0]:.2f}"]
        )
    claims = [
        ["LPIPS BD-rate, tau=0 vs tau=1", "-61% (written +158.75%)", lpips_bd],
        ["mean PSNR cost of tau=0", "about 1 dB", f"{sum(psnr_loss) / len(psnr_loss):.2f} dB"],
        ["PSNR BD-rate, tau=1 vs JPEG (Pillow 4:2:0)", "-", _bd(bd_rate, jpeg, tau1, "psnr", "%")],
        ["PSNR BD-rate, tau=1 vs WebP (Pillow)", "-", _bd(bd_rate, webp, tau1, "psnr", "%")],
        ["BD-PSNR, tau=1 vs JPEG", "-", _bd(bd_quality, jpeg, tau1, "psnr", " dB")],
        ["PSNR and LPIPS monotone in tau at every rate", "yes", "yes" if monotone else "no"],
    ]
    settings = sweep["settings"]
    variant_rows, verdict = _variant_rows(sweep, variant, probe_rate)
    variant_text = (
        _table(["module", *[f"tau={t:g}" for t in TAUS]], variant_rows) + "\n\n" + verdict
        if variant is not None
        else "Not run: pass `--variant1 DIR` with a module trained by `dpfusion train fusion --variant direct`."
    )
    shown = out.relative_to(ROOT)
    return (
        "\n\n".join(
            [
                "# Reproduction on Kodak with the embedded default model",
                f"Produced by `{command}` (rerunnable; sweeps resume from their journals). Raw results: "
                f"`{shown}/` (`sweep.json`, `seeds.json`, `steps.json`, per-curve CompressAI JSON, CSV), plots in "
                f"`{shown}/plots/`. Images: {len({row['image'] for row in sweep['per_image']})} Kodak PNGs; "
                f"real bitstreams, bpp from file sizes; {settings.get('steps')} DDIM steps; metrics "
                f"{', '.join(m for m, info in sweep['metrics'].items() if info['available'])} "
                "(psnr on RGB 8-bit, ms_ssim on RGB, lpips_alex = LPIPS v0.1 AlexNet).",
                _model_line(),
                "## Claims",
                _table(["claim", "paper (Cheng2020, GPU-trained)", "measured here"], claims),
                "## PSNR dB / LPIPS-alex by rate and tau (Kodak mean)",
                _table(["rate", "bpp", *[f"tau={t:g}" for t in TAUS]], rows),
                "## Stability over 10 noise seeds (tau = 0; mean ± std over seeds of the Kodak mean)",
                "Paper: PSNR ± 0.0005 dB over 10 runs.",
                _table(["rate", "PSNR dB", "LPIPS-alex"], seed_rows),
                "## Quality against sampling steps (tau = 0)",
                _table(["steps", "PSNR dB", "LPIPS-alex", "decode s / image"], step_rows),
                f"## Variant-1 ablation (PSNR dB / LPIPS-alex at rate {probe_rate:g})",
                variant_text,
                "## Decode latency (`python benchmarks/decode_latency.py`, this machine, 2 CPU cores)",
                "```text\n" + latency.strip() + "\n```",
                "## Plots",
                "\n".join(f"![{p.stem}](../{p.relative_to(ROOT)})" for p in sorted((out / "plots").rglob("*.png"))),
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--out", default="results/default")
    parser.add_argument("--rates", default="0,1,2,3,4,5")
    parser.add_argument("--probe-rate", default="3", help="rate of the seed and step sweeps")
    parser.add_argument("--doc", default="docs/REPRODUCTION.md")
    parser.add_argument("--variant1", help="folder of a Variant-1 fusion module for the default codec")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the sweeps")
    parser.add_argument(
        "--metrics", default="psnr,ms_ssim,lpips_alex", help="metrics of the rate x tau sweep (add dists, fid, ...)"
    )
    args = parser.parse_args()
    out = ROOT / args.out
    common = [args.kodak, "-q", "--threads", str(args.threads)]
    _run(
        [
            "eval",
            *common,
            "-o",
            str(out / "sweep.json"),
            "--rates",
            args.rates,
            "--taus",
            ",".join(f"{t:g}" for t in TAUS),
            "--metrics",
            args.metrics,
            "--baselines",
            "jpeg,webp",
        ]
    )
    _run(
        [
            "eval",
            *common,
            "-o",
            str(out / "seeds.json"),
            "--rates",
            args.probe_rate,
            "--taus",
            "0",
            "--seeds",
            "10",
            "--metrics",
            "psnr,lpips_alex",
            "--baselines",
            "none",
        ]
    )
    _run(
        [
            "eval",
            *common,
            "-o",
            str(out / "steps.json"),
            "--rates",
            args.probe_rate,
            "--taus",
            "0",
            "--steps",
            ",".join(map(str, STEPS)),
            "--metrics",
            "psnr,lpips_alex",
            "--baselines",
            "none",
        ]
    )
    if args.variant1:
        _run(
            [
                "eval",
                *common,
                "-o",
                str(out / "variant1.json"),
                "--fusion",
                args.variant1,
                "--rates",
                args.probe_rate,
                "--taus",
                ",".join(f"{t:g}" for t in TAUS),
                "--metrics",
                "psnr,lpips_alex",
                "--baselines",
                "none",
            ]
        )
    _run(["plot", str(out / "sweep.json"), "-o", str(out / "plots")])
    _run(["plot", str(out / "steps.json"), "-o", str(out / "plots" / "steps")])
    latency = _latency(out)
    docs = [load_results(out / f"{name}.json") for name in ("sweep", "seeds", "steps")]
    variant = load_results(out / "variant1.json") if args.variant1 else None
    command = "python benchmarks/reproduce.py " + " ".join(sys.argv[1:])
    with atomic_path(ROOT / args.doc) as tmp:
        tmp.write_text(report(out, *docs, variant, latency, command.strip(), float(args.probe_rate)))
    print(json.dumps({"written": args.doc}))


if __name__ == "__main__":
    main()
