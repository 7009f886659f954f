"""Reproduce the paper's claims and measure the dial on Kodak and on the validation photos, in one command.

    python benchmarks/reproduce.py [--kodak ../shared/data/kodak] [--validation /work/traindata/validation]

Runs (each sweep resumes from its journal when interrupted), on Kodak (the report) and on the
validation photos (held out from training, where every choice was made; a generalisation check):
  1. the dial at tau in {0, .1, .2, .3, .5, .7, .8, .9, 1}: the shipped one, which the sender fits to each
     image (the default), and the module's calibration alone (``--no-image-dial``), with JPEG and WebP;
  2. the plain pixel blend of the two ends (``--tau-mode linear``): the baseline a user builds alone;
  3. the paper's eq. 4 at tau in {.3, .5, .8} (``--tau-mode paper``; its ends are the dial's);
  4. realism: FID and KID on 256x256 patches (HiFiC protocol) at tau in {0, .1, .3, 1} and the rates of
     --realism-rates (validation: tau 0 and 1, unless skipped), with JPEG q75 and WebP q70;
  5. on Kodak only: 10 noise seeds and steps in {1, 2, 5, 10, 20, 50} at tau = 0, Variant-1 when
     --variant1 names its folder, the plots and the decode-latency benchmark;
then writes docs/REPRODUCTION.md: every claim and every bar next to the number measured here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)

from dial_verdicts import with_ends  # noqa: E402  (benchmarks/ is this script's path)
from dists_patches import score_store, write  # noqa: E402

from dpfusion.atomic import atomic_path  # noqa: E402
from dpfusion.cli import main as dpfusion  # noqa: E402
from dpfusion.codecs.loading import DEFAULT_DIR, RELEASE_NAME, ReleaseManifest  # noqa: E402
from dpfusion.errors import DPFusionError  # noqa: E402
from dpfusion.eval.dial_criteria import curve_points, verdict  # noqa: E402
from dpfusion.eval.records import Curve, Results  # noqa: E402
from dpfusion.eval.results_io import load_results  # noqa: E402
from dpfusion.metrics.bdrate import bd_quality, bd_rate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TAUS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)
PAPER_TAUS = (0.3, 0.5, 0.8)
BLEND_TAUS = (0.5, 0.8, 0.9, 0.95)
REALISM_TAUS = (0.0, 0.1, 0.3, 1.0)
REALISM_BASELINES = ["--jpeg-qualities", "75", "--webp-qualities", "70"]
STEPS = (1, 2, 5, 10, 20, 50)
SPLITS = ("kodak", "validation")
DISTS_GROUPS = ["dpfusion/*/tau0", "dpfusion/*/tau1", "jpeg/q75", "webp/q70"]


def _run(argv: list[str]) -> None:
    print("$ dpfusion " + " ".join(argv), flush=True)
    if dpfusion(argv) != 0:
        raise SystemExit(f"dpfusion {argv[0]} failed")


def _curve(doc: Results, kind: str = "dpfusion", tau: float | None = None, steps: int | None = None) -> Curve:
    for curve in doc.curves:
        if curve.kind == kind and (tau is None or curve.tau == tau) and (steps is None or curve.steps == steps):
            return curve
    raise SystemExit(f"no curve {kind} tau={tau} steps={steps} in the results")


def _xy(curve: Curve, metric: str) -> tuple[list[float], list[float]]:
    sign = -1.0 if metric.startswith(("lpips", "dists")) else 1.0
    return curve.results["bpp"], [sign * v for v in curve.results[metric]]


def _bd(fn, anchor: Curve, test: Curve, metric: str, unit: str) -> str:
    """A Bjontegaard delta as text, or why it is undefined (e.g. quality ranges that do not overlap)."""
    try:
        return f"{fn(_xy(anchor, metric), _xy(test, metric)):+.2f}{unit}"
    except DPFusionError as exc:
        spans = [f"{min(c.results[metric]):.2f}-{max(c.results[metric]):.2f}" for c in (anchor, test)]
        return f"undefined ({exc}; {metric} {spans[0]} vs {spans[1]})"


def _model_line() -> str:
    release = ReleaseManifest.load_config(DEFAULT_DIR / RELEASE_NAME)
    return (
        f"Model: `dpfusion-default` (weights fingerprint {release.fingerprint}), base codec trained "
        f"{release.trained_steps or '?'} steps; see `docs/MODEL_CARD.md` for its training state."
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


def _taus(values: tuple[float, ...]) -> str:
    return ",".join(f"{t:g}" for t in values)


def _eval(dataset: str, output: Path, rates: str, taus: tuple[float, ...], metrics: str, threads: int,
          *extra: str) -> None:  # fmt: skip
    _run(["eval", dataset, "-q", "--threads", str(threads), "-o", str(output), "--rates", rates,
          "--taus", _taus(taus), "--metrics", metrics, *extra])  # fmt: skip


def _split_sweeps(dataset: str, out: Path, args: argparse.Namespace, realism_taus: tuple[float, ...] | None) -> None:
    """The dial and the plain blend on one split, then realism unless ``realism_taus`` is None; one file each."""
    _eval(dataset, out / "sweep.json", args.rates, TAUS, "psnr,lpips_alex", args.threads,
          "--no-image-dial", "--baselines", "jpeg,webp")  # fmt: skip
    _eval(dataset, out / "image_dial.json", args.rates, TAUS, "psnr,lpips_alex", args.threads,
          "--baselines", "none")  # fmt: skip
    _eval(dataset, out / "blend.json", args.rates, BLEND_TAUS, "psnr,lpips_alex", args.threads,
          "--tau-mode", "linear", "--baselines", "none")  # fmt: skip
    if realism_taus is not None:
        _eval(dataset, out / "realism.json", args.realism_rates, realism_taus, "psnr,fid,kid", args.threads,
              "--baselines", "jpeg,webp", *REALISM_BASELINES)  # fmt: skip


def _paper_sweep(dataset: str, out: Path, args: argparse.Namespace) -> None:
    """The paper's eq. 4 at its interior taus (its ends are the dial's)."""
    _eval(dataset, out / "paper.json", args.paper_rates, PAPER_TAUS, "psnr,lpips_alex", args.threads,
          "--tau-mode", "paper", "--baselines", "none")  # fmt: skip


def _kodak_extras(args: argparse.Namespace, out: Path) -> None:
    """Seeds, steps and Variant-1 at the probe rate (tau = 0: the same image in every tau mode)."""
    probe = ["--rates", args.probe_rate, "--taus", "0", "--metrics", "psnr,lpips_alex", "--baselines", "none"]
    common = ["eval", args.kodak, "-q", "--threads", str(args.threads)]
    _run([*common, "-o", str(out / "seeds.json"), *probe, "--seeds", "10", "--steps", "10"])
    _run([*common, "-o", str(out / "steps.json"), *probe, "--steps", ",".join(map(str, STEPS))])
    if args.variant1:
        _run([*common, "-o", str(out / "variant1.json"), "--fusion", args.variant1, "--rates", args.probe_rate,
              "--taus", "0,0.3,0.5,0.8,1", "--metrics", "psnr,lpips_alex", "--baselines", "none"])  # fmt: skip


def _dists(args: argparse.Namespace, out: Path) -> dict[str, dict]:
    """DISTS on the centre patch of the realism sweep's stored decodes (tau 0 and 1, the baselines)."""
    path = out / "dists.json"
    known = json.loads(path.read_text())["groups"] if path.is_file() else {}
    results = score_store(Path(args.kodak), out / "realism.images", DISTS_GROUPS, known)
    write(path, results)
    return results


def _dists_rows(results: dict[str, dict]) -> list[list[str]]:
    return [[name, str(row["images"]), f"{row['dists']:.4f} ± {row['stderr']:.4f}"] for name, row in results.items()]


def _split_docs(out: Path, realism: bool = True) -> dict[str, Results]:
    """The split's results; ``realism`` False leaves out a ``realism.json`` this run did not refresh."""
    docs = {name: load_results(out / f"{name}.json") for name in ("sweep", "image_dial", "blend")}
    docs["blend"] = with_ends(docs["blend"], docs["sweep"])
    if realism and (out / "realism.json").is_file():
        docs["realism"] = load_results(out / "realism.json")
    if (out / "paper.json").is_file():
        docs["paper"] = with_ends(load_results(out / "paper.json"), docs["sweep"])
    return docs


def _ratio(doc: Results, metric: str, rate: float) -> float | None:
    """tau = 0 over tau = 1; None where either is not positive (the unbiased KID estimate can fall below zero,
    and a ratio of such values means nothing)."""
    values = {c.tau: c.results[metric][c.rates.index(rate)] for c in doc.learned()}
    return values[0.0] / values[1.0] if values[0.0] > 0 and values[1.0] > 0 else None


def _ratio_range(doc: Results | None, metric: str, rates: list[float]) -> str:
    if doc is None or not rates:
        return "not run"
    ratios = {r: _ratio(doc, metric, r) for r in rates}
    shown = [v for v in ratios.values() if v is not None]
    text = f"{min(shown):.2f}x-{max(shown):.2f}x" if shown else "no positive pair"
    skipped = [f"{r:g}" for r, v in ratios.items() if v is None]
    return text + (f" (rates {', '.join(skipped)}: {metric.upper()} below zero, no ratio)" if skipped else "")


def _bars(docs: dict[str, Results]) -> list[str]:
    """The dial issue's bars on one split, each as measured (worst rate where a bar is per rate)."""
    tau0, tau1 = _curve(docs["image_dial"], tau=0.0), _curve(docs["image_dial"], tau=1.0)
    rates = tau1.rates
    cost = [a - b for a, b in zip(tau1.results["psnr"], tau0.results["psnr"], strict=True)]
    realism = docs.get("realism")
    measured = [r for r in rates if realism and r in _curve(realism, tau=1.0).rates]
    return [
        _bd(bd_rate, tau1, tau0, "lpips_alex", "%"),
        f"{sum(cost) / len(cost):.2f} dB",
        _ratio_range(realism, "fid", measured),
        _ratio_range(realism, "kid", measured),
        *_dial_bars(docs["image_dial"], docs["blend"], rates),
        *_dial_bars(docs["sweep"], docs["blend"], rates),
    ]


def _dial_bars(dial: Results, blend: Results, rates: list[float]) -> list[str]:
    """Evenness, the gap to the blend and the wasted positions of one way to render the interior."""
    verdicts = [verdict(dial, blend, r) for r in rates]
    wasted = [f"rate {v.rate:g}: tau {a:g} by {b:g}" for v in verdicts for a, b in v.wasted]
    return [
        f"{max(v.evenness for v in verdicts):.3f}",
        f"{max(v.blend_gap for v in verdicts):+.3f}",
        "none" if not wasted else "; ".join(wasted),
    ]


BAR_NAMES = [
    ("LPIPS BD-rate, tau=0 vs tau=1", "<= -55%"),
    ("mean PSNR cost of tau=0", "<= 1.0 dB"),
    ("FID tau=0 / tau=1, range over the measured rates", "<= 0.5x"),
    ("KID tau=0 / tau=1, range over the measured rates", "<= 0.3x"),
    ("evenness: max \\|u(tau) - (1 - tau)\\| over rates", "<= 0.15"),
    ("interior LPIPS minus best blend at no lower PSNR (share of range), worst rate", "<= +0.02"),
    ("positions beaten in PSNR (> 0.01 dB) and LPIPS (> 0.0005)", "none"),
    ("the module's calibration alone (`--no-image-dial`): evenness", "<= 0.15"),
    ("the module's calibration alone: interior minus best blend, worst rate", "<= +0.02"),
    ("the module's calibration alone: positions beaten", "none"),
]


def _bar_table(splits: dict[str, dict]) -> str:
    measured = {name: _bars(docs) for name, docs in splits.items()}
    rows = [[n, bar, *[measured[s][i] for s in splits]] for i, (n, bar) in enumerate(BAR_NAMES)]
    return _table(["figure", "bar", *splits], rows)


def _dial_rows(docs: dict[str, Results], mode: str = "image_dial") -> list[list[str]]:
    rows = []
    for i, rate in enumerate(_curve(docs[mode], tau=1.0).rates):
        row = [f"{rate:g}", f"{_curve(docs[mode], tau=1.0).results['bpp'][i]:.4f}"]
        row += [f"{p.psnr:.2f} / {p.lpips:.4f}" for p in curve_points(docs[mode], rate)]
        rows.append(row)
    return rows


def _verdict_rows(docs: dict[str, Results], mode: str) -> list[list[str]]:
    rows = []
    for rate in _mode_rates(docs, mode):
        v = verdict(docs[mode], docs["blend"], rate)
        wasted = ", ".join(f"{a:g} (by {b:g})" for a, b in v.wasted) or "none"
        rows.append([f"{rate:g}", f"{v.evenness:.3f}", f"{v.blend_gap:+.3f}", str(v.beyond_blend), wasted])
    return rows


def _mode_rates(docs: dict[str, Results], mode: str) -> list[float]:
    return [
        r
        for r in _curve(docs["sweep"], tau=1.0).rates
        if r in _curve(docs[mode], tau=PAPER_TAUS[0] if mode == "paper" else 1.0).rates
    ]


def _paper_section(docs: dict[str, Results], verdict_header: list[str]) -> list[str]:
    if "paper" not in docs:
        return ["Eq. 4 (`--tau-mode paper`) was not measured in this session (`--paper-rates` empty)."]
    return [
        "Eq. 4 at the paper's tau (`--tau-mode paper`), PSNR dB / LPIPS-alex, Kodak:",
        _table(["rate", *[f"tau={t:g}" for t in (0.0, *PAPER_TAUS, 1.0)]], _paper_rows(docs)),
        _table(verdict_header, _verdict_rows(docs, "paper")),
    ]


def _paper_rows(docs: dict[str, Results]) -> list[list[str]]:
    rows = []
    for rate in _mode_rates(docs, "paper"):
        rows.append([f"{rate:g}", *[f"{p.psnr:.2f} / {p.lpips:.4f}" for p in curve_points(docs["paper"], rate)]])
    return rows


def _realism_rows(doc: Results) -> list[list[str]]:
    rows = []
    for curve in doc.curves:
        xs = curve.xs
        label = f"tau={curve.tau:g}" if curve.learned else curve.name
        for i, x in enumerate(xs):
            r = curve.results
            cells = [f"{r[m][i]:.4f}" if m in r and r[m][i] is not None else "-" for m in ("fid", "kid")]
            rows.append([label, f"{x:g}", f"{r['bpp'][i]:.4f}", f"{r['psnr'][i]:.2f}" if "psnr" in r else "-", *cells])
    return rows


def _seed_step_rows(seeds: Results, steps: Results) -> tuple[list[list[str]], list[list[str]]]:
    seed_curve = _curve(seeds, tau=0.0)
    seed_rows = [
        [f"{rate:g}", f"{seed_curve.results['psnr'][i]:.3f} ± {seed_curve.seed_std['psnr'][i]:.4f}",
         f"{seed_curve.results['lpips_alex'][i]:.4f} ± {seed_curve.seed_std['lpips_alex'][i]:.5f}"]
        for i, rate in enumerate(seed_curve.rates)
    ]  # fmt: skip
    step_rows = []
    for count in STEPS:
        c = _curve(steps, tau=0.0, steps=count).results
        step_rows.append(
            [str(count), f"{c['psnr'][0]:.3f}", f"{c['lpips_alex'][0]:.4f}", f"{c['decoding_time'][0]:.2f}"]
        )
    return seed_rows, step_rows


def _codec_claims(sweep: Results) -> list[list[str]]:
    tau1, jpeg, webp = _curve(sweep, tau=1.0), _curve(sweep, "jpeg"), _curve(sweep, "webp")
    return [
        ["PSNR BD-rate, tau=1 vs JPEG (Pillow 4:2:0)", _bd(bd_rate, jpeg, tau1, "psnr", "%")],
        ["PSNR BD-rate, tau=1 vs WebP (Pillow)", _bd(bd_rate, webp, tau1, "psnr", "%")],
        ["BD-PSNR, tau=1 vs JPEG", _bd(bd_quality, jpeg, tau1, "psnr", " dB")],
    ]


def _sections(splits: dict[str, dict], extras: dict, probe_rate: float) -> list[str]:
    kodak, validation = splits["kodak"], splits["validation"]
    seed_rows, step_rows = _seed_step_rows(extras["seeds"], extras["steps"])
    verdict_header = ["rate", "evenness", "minus best blend", "above the blend's PSNR", "beaten positions"]
    photos = len(validation["sweep"].settings["images"])
    return [
        "## The dial's bars (the shipped dial: the blend of the two ends, fitted by the sender to each image)",
        f"Each figure on Kodak (the report) and on the {photos} validation photos (held out from training; the "
        "fit's probes and PSNR floor, the module's calibration and the default steps were chosen on them; the "
        "shipped module was trained before the split existed and saw the 20 shared ones, not the Debian "
        "wallpapers). By default the sender fits the dial to each image (it holds the original: it scores the "
        "blend of the two ends it sends and writes 11 one-byte weights into the file, "
        "`dpfusion/fusion/image_dial.py`), so its evenness is measured on the images it was fitted to, by design; "
        "the last three rows are a file without that fit (`--no-image-dial`), decoded with the module's "
        "calibration, which is what older files and a sender without LPIPS get. "
        "u(tau) = (L(1) - L(tau)) / (L(1) - L(0)) in LPIPS-alex; the blend is the plain pixel blend of the "
        "decoded tau = 1 and tau = 0 images "
        "(`--tau-mode linear`), the baseline a user can build without dpfusion.",
        _bar_table(splits),
        "## The codec against JPEG and WebP (Kodak)",
        _table(["claim", "measured here"], _codec_claims(kodak["sweep"])),
        "## PSNR dB / LPIPS-alex by rate and tau, the shipped dial (Kodak mean)",
        _table(["rate", "bpp", *[f"tau={t:g}" for t in TAUS]], _dial_rows(kodak)),
        "## The same on the validation photos",
        _table(["rate", "bpp", *[f"tau={t:g}" for t in TAUS]], _dial_rows(validation)),
        "## The module's calibration alone (`--no-image-dial`), Kodak mean",
        _table(["rate", "bpp", *[f"tau={t:g}" for t in TAUS]], _dial_rows(kodak, "sweep")),
        "## Per rate: the shipped dial (Kodak | validation), the module's calibration alone (Kodak | validation) "
        "and the paper's eq. 4 (Kodak)",
        _table(verdict_header, _verdict_rows(kodak, "image_dial")),
        _table(verdict_header, _verdict_rows(validation, "image_dial")),
        _table(verdict_header, _verdict_rows(kodak, "sweep")),
        _table(verdict_header, _verdict_rows(validation, "sweep")),
        "The dial's interior is the blend itself (the same pixels as `--tau-mode linear` at tau = 1 - w(tau), "
        "tested byte for byte), so its true gap is 0; the figure above compares with the blend sampled at four "
        "weights (0.05, 0.1, 0.2, 0.5) and joined by straight lines, and the blend's curve bends below those "
        "chords, which is where the negative values come from. Positions above every sampled blend PSNR (near "
        "the blend's PSNR peak) count as 0.",
        *_paper_section(kodak, verdict_header),
        "## Realism: FID and KID on 256x256 patches (HiFiC protocol), Kodak",
        _table(["curve", "rate / quality", "bpp", "PSNR", "FID", "KID"], _realism_rows(kodak["realism"])),
        "DISTS on the central 256x256 patch of each Kodak image (`benchmarks/dists_patches.py`; mean ± standard "
        "error over the 24 images): at full resolution one image takes about 19 s on these 2 cores, the centre "
        "patch a sixth of that, the same patch for every group.",
        _table(["group", "images", "DISTS"], _dists_rows(extras["dists"])),
        "Validation photos (tau = 0 and 1). Most of these photos are at most 512 pixels a side, so the HiFiC grid "
        "cuts only a few patches from each: FID and KID here rest on a few dozen patches and are not meaningful "
        "(KID even goes negative); `benchmarks/validation_realism.py` scores 218 overlapping patches instead "
        "(docs/METHOD.md).",
        _table(["curve", "rate / quality", "bpp", "PSNR", "FID", "KID"], _realism_rows(validation["realism"]))
        if "realism" in validation
        else "Not run in this session (`--no-validation-realism`).",
        "## Stability over 10 noise seeds (tau = 0, 10 steps; mean ± std over seeds of the Kodak mean)",
        "Paper: PSNR ± 0.0005 dB over 10 runs.",
        _table(["rate", "PSNR dB", "LPIPS-alex"], seed_rows),
        f"## Quality against sampling steps (tau = 0, rate {probe_rate:g}, Kodak)",
        _table(["steps", "PSNR dB", "LPIPS-alex", "decode s / image"], step_rows),
    ]


def report(out: Path, splits: dict[str, dict], extras: dict, latency: str, command: str, probe_rate: float) -> str:
    shown = out.relative_to(ROOT)
    settings = splits["kodak"]["sweep"].settings
    parts = [
        "# Reproduction and dial measurements with the embedded default model",
        f"Produced by `{command}` (rerunnable; sweeps resume from their journals). Raw results: `{shown}/` "
        f"(Kodak) and `{shown}/validation/`: `image_dial.json` (the shipped dial), "
        "`sweep.json` (the module's calibration alone, with JPEG and WebP), `blend.json`, "
        "`paper.json`, `realism.json`, "
        f"`seeds.json`, `steps.json`, per-curve CompressAI JSON, CSV; plots in `{shown}/plots/`. Images: "
        f"{len(settings['images'])} Kodak PNGs and {len(splits['validation']['sweep'].settings['images'])} "
        f"validation photos; real bitstreams, bpp from file sizes; {settings.get('steps')} sampling step(s); "
        "psnr on RGB 8-bit, ms_ssim on RGB, lpips_alex = LPIPS v0.1 AlexNet.",
        _model_line(),
        *_sections(splits, extras, probe_rate),
        f"## Variant-1 ablation (rate {probe_rate:g})",
        _variant_text(extras.get("variant1")),
        "## Decode latency (`python benchmarks/decode_latency.py`, this machine, 2 CPU cores)",
        "```text\n" + latency.strip() + "\n```",
        "## Plots",
        "\n".join(f"![{p.stem}](../{p.relative_to(ROOT)})" for p in sorted((out / "plots").rglob("*.png"))),
    ]
    return "\n\n".join(parts) + "\n"


def _variant_text(variant: Results | None) -> str:
    if variant is None:
        return "Not rerun: pass `--variant1 DIR` with a module trained by `dpfusion train fusion --variant direct`."
    rows = [
        [f"tau={p.tau:g}", f"{p.psnr:.2f}", f"{p.lpips:.4f}"] for p in curve_points(variant, variant.curves[0].rates[0])
    ]
    return _table(["Variant-1", "PSNR dB", "LPIPS-alex"], rows)


def _tradeoff_plot(out: Path, docs: dict) -> None:
    """PSNR against LPIPS per rate: the shipped dial, the module's calibration, the plain blend of the ends
    and the paper's eq. 4."""
    from matplotlib.figure import Figure

    rates = _curve(docs["sweep"], tau=1.0).rates
    fig = Figure(figsize=(4 * ((len(rates) + 1) // 2), 7))
    axes = fig.subplots(2, (len(rates) + 1) // 2)
    for ax, rate in zip(axes.flat, rates, strict=False):
        for name, style in (("blend", "k--"), ("paper", "s-"), ("sweep", "^:"), ("image_dial", "o-")):
            if name not in docs:
                continue
            points = curve_points(docs[name], rate)
            label = {"blend": "pixel blend of the ends", "paper": "eq. 4 (paper)", "sweep": "module calibration",
                     "image_dial": "dial (shipped: fitted to each image)"}[name]  # fmt: skip
            ax.plot([p.lpips for p in points], [p.psnr for p in points], style, label=label, markersize=4)
        ax.set_title(f"rate {rate:g}")
        ax.set_xlabel("LPIPS-alex")
        ax.set_ylabel("PSNR dB")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "plots" / "tradeoff.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--validation", default="/work/traindata/validation", help="`dpfusion data prepare` output")
    parser.add_argument("--out", default="results/default")
    parser.add_argument("--rates", default="0,1,2,3,4,5")
    parser.add_argument("--probe-rate", default="3", help="rate of the seed and step sweeps")
    parser.add_argument("--doc", default="docs/REPRODUCTION.md")
    parser.add_argument("--variant1", help="folder of a Variant-1 fusion module for the default codec")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the sweeps")
    parser.add_argument("--paper-rates", default="0,3,5", help="rates of the eq.-4 sweep ('' skips it)")
    parser.add_argument("--realism-rates", default="0,1,2,3,4,5", help="rates of the FID/KID sweep")
    parser.add_argument("--no-validation-realism", action="store_true", help="skip FID/KID on the validation photos")
    parser.add_argument("--no-latency", action="store_true", help="skip the decode-latency benchmark")
    args = parser.parse_args()
    out = ROOT / args.out
    _split_sweeps(args.validation, out / "validation", args, None if args.no_validation_realism else (0.0, 1.0))
    _split_sweeps(args.kodak, out, args, REALISM_TAUS)
    if args.paper_rates:
        _paper_sweep(args.kodak, out, args)
    _kodak_extras(args, out)
    _run(["plot", str(out / "sweep.json"), "-o", str(out / "plots")])
    splits = {"kodak": _split_docs(out), "validation": _split_docs(out / "validation", not args.no_validation_realism)}
    _tradeoff_plot(out, splits["kodak"])
    extras = {name: load_results(out / f"{name}.json") for name in ("seeds", "steps")}
    extras["dists"] = _dists(args, out)
    if args.variant1:
        extras["variant1"] = load_results(out / "variant1.json")
    latency = "not rerun in this session (--no-latency)" if args.no_latency else _latency(out)
    command = "python benchmarks/reproduce.py " + " ".join(sys.argv[1:])
    with atomic_path(ROOT / args.doc) as tmp:
        tmp.write_text(report(out, splits, extras, latency, command.strip(), float(args.probe_rate)))
    print(json.dumps({"written": args.doc}))


if __name__ == "__main__":
    main()
