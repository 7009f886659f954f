"""A whole evaluation, sweep to written files, callable without the command line.

``dpfusion eval`` parses its options into these arguments and prints what comes back; a
notebook or a benchmark calls ``evaluate`` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dpfusion.errors import DPFusionError
from dpfusion.eval.aggregate import build_results
from dpfusion.eval.baselines import BASELINES
from dpfusion.eval.journal import Journal, journal_path
from dpfusion.eval.models import ModelCache
from dpfusion.eval.records import Results
from dpfusion.eval.results_io import write_results
from dpfusion.eval.scoring import Scorer
from dpfusion.eval.setlevel import set_level_values
from dpfusion.eval.sweep import ImageStore, Sweep, SweepSpec, model_signature


def evaluation_settings(
    dataset: str | Path, images: Sequence[Path], models: ModelCache, spec: SweepSpec, scorer: Scorer
) -> dict[str, Any]:
    """What ``results.json`` records of how it was made (recorded once, read by ``bdrate`` and plots)."""
    return {
        "dataset": str(dataset),
        "images": [image.name for image in images],
        "model": models.first.codec.name,
        "checkpoint": None if models.checkpoint is None else str(models.checkpoint),
        "fusion": None if models.fusion is None else str(models.fusion),
        "tau_mode": models.tau_mode,
        "sampler": models.sampler,
        "signatures": {format(rate, "g"): model_signature(models(rate), spec.taus) for rate in spec.rates},
        "rates": list(spec.rates),
        "taus": list(spec.taus),
        "steps": list(spec.steps),
        "seeds": list(spec.seeds),
        "baselines": {k: list(v) for k, v in spec.baselines.items()},
        "metrics": scorer.requested,
        "bpp": "8 * bytes of the complete file / pixels",
        "decoding_time": "seconds per image per tau (one batched decode of all tau, divided by their number)",
    }


def evaluate(
    dataset: str | Path,
    images: Sequence[Path],
    spec: SweepSpec,
    scorer: Scorer,
    models: ModelCache,
    output: str | Path,
    fresh: bool = False,
    progress: bool = True,
) -> tuple[Results, list[Path]]:
    """Run (or resume, from ``output``'s journal) the sweep, aggregate it and write every result file."""
    output = Path(output)
    if output.suffix != ".json":
        raise DPFusionError(f"-o must name a .json file, got {output}")
    if models.first.fusion is None and any(t != 1.0 for t in spec.taus):
        raise DPFusionError("tau < 1 needs a fusion module: give --fusion, or --taus 1 for the base codec alone")
    models.fit_dial_only_inside(spec.taus)
    models.first.check_image_dial()
    journal = Journal(journal_path(output), fresh=fresh)
    store = ImageStore(output.with_name(f"{output.stem}.images"))
    sweep = Sweep(list(images), spec, scorer, journal, models, store, progress=progress)
    records = sweep.run()
    set_values, set_errors = set_level_values(sweep, progress=progress)
    settings = evaluation_settings(dataset, images, models, spec, scorer)
    labels = {name: BASELINES[name].label for name in spec.baselines}
    results = build_results(records, settings, scorer.info(), set_values, models.first.codec.name, labels, set_errors)
    return results, write_results(results, output)
