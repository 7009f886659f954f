"""``dpfusion eval DATASET_DIR -o results.json``: rate x tau sweep with real bitstreams, baselines, metrics.

Resumable: every finished unit is appended to ``results.journal.jsonl`` (beside the output)
and skipped when the same command runs again; ``--fresh`` discards the journal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dpfusion.api import DEFAULT_STEPS, check_seed
from dpfusion.commands.common import add_device, add_image_dial, add_model, add_precision, add_sampler, add_tau_mode
from dpfusion.errors import DPFusionError
from dpfusion.eval.baselines import BASELINES, check_baseline, quality_list
from dpfusion.eval.evaluation import evaluate
from dpfusion.eval.models import ModelCache
from dpfusion.eval.results_io import curves_folder
from dpfusion.eval.scoring import DEFAULT_METRICS, Scorer
from dpfusion.eval.sweep import SweepSpec, list_images
from dpfusion.metrics import METRICS

DEFAULT_TAUS = "0,0.3,0.5,0.8,1"


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise DPFusionError(f"{option} must be a comma list of numbers, got {text!r}") from None


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise DPFusionError(f"{option} must be a comma list of integers, got {text!r}") from None


def seed_list(text: str) -> tuple[int, ...]:
    """``3`` -> seeds 0, 1, 2; ``5,7`` -> seeds 5 and 7."""
    values = _ints(text, "--seeds")
    if len(values) == 1:
        if values[0] < 1:
            raise DPFusionError(f"--seeds N needs N >= 1, got {values[0]}")
        return tuple(range(values[0]))
    for value in values:
        check_seed(value)
    return values


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    args.rates = None if args.rates is None else _floats(args.rates, "--rates")
    images = list_images(args.dataset)
    baselines = {}
    for name in [b for b in args.baselines.split(",") if b and b != "none"]:
        baseline = check_baseline(name)
        option = f"--{name}-qualities"
        text = getattr(args, f"{name}_qualities")
        baselines[name] = quality_list(text, option) if text else baseline.qualities
    models = ModelCache(
        args.model, args.rates, args.checkpoint, args.fusion, args.tau_mode, args.device, args.sampler,
        image_dial=args.image_dial, precision=args.precision,
    )  # fmt: skip
    spec = SweepSpec(
        rates=models.rates(),
        taus=_floats(args.taus, "--taus"),
        steps=_ints(args.steps, "--steps"),
        seeds=seed_list(args.seeds),
        baselines=baselines,
    )
    scorer = Scorer([m for m in args.metrics.split(",") if m])
    for metric, reason in scorer.unavailable.items():
        print(f"dpfusion: metric {metric} unavailable: {reason}", file=sys.stderr)
    output = Path(args.output)
    results, written = evaluate(
        args.dataset, images, spec, scorer, models, output, fresh=args.fresh, progress=not args.quiet
    )
    print(f"{output}: {len(results.curves)} curves, {len(results.per_image)} per-image rows")
    print(f"{curves_folder(output)}/: one CompressAI-style file per curve; {written[-1]}: per-image CSV")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="rate x tau sweep over a folder of images, with baselines and metrics",
        description=(
            "Writes OUT.json (everything), OUT/ (one CompressAI-style JSON per curve: "
            "python -m compressai.utils.plot -f OUT/*.json), OUT.csv (per-image rows), "
            "OUT.journal.jsonl (finished units; a rerun resumes from it) and, for fid/kid, OUT.images/."
        ),
    )
    p.add_argument("dataset", help="folder of test images (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="results .json (curves go to a folder of the same stem)")
    add_model(p)
    p.add_argument("--checkpoint", help="codec weights; {rate} in the path is replaced per rate for fixed-rate codecs")
    p.add_argument("--fusion", help="fusion module folder (default: the embedded one for the default model)")
    add_tau_mode(p)
    add_image_dial(p)
    add_sampler(p)
    add_device(p)
    add_precision(p, "fp32")  # a report is a measurement of the model, the same on every machine
    p.add_argument("--rates", help="comma list of rate indices / zoo qualities (default: every rate of the codec)")
    p.add_argument("--taus", default=DEFAULT_TAUS, help=f"comma list of tau (default {DEFAULT_TAUS})")
    p.add_argument("--steps", default=str(DEFAULT_STEPS), help=f"comma list of DDIM step counts ({DEFAULT_STEPS})")
    p.add_argument("--seeds", default="1", help="N seeds (0..N-1) or a comma list of seeds (default 1)")
    p.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma list from {', '.join(METRICS)} (default {','.join(DEFAULT_METRICS)})",
    )
    p.add_argument("--baselines", default="jpeg,webp", help="comma list from: " + ", ".join(BASELINES) + "; or none")
    for name, baseline in BASELINES.items():
        default = ",".join(str(q) for q in baseline.qualities)
        p.add_argument(f"--{name}-qualities", dest=f"{name}_qualities", help=f"(default {default})")
    p.add_argument("--fresh", action="store_true", help="discard the journal of an earlier run of this output")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
