"""`dpfusion eval | bdrate | plot | plot-grid` end to end on a tiny codec, fusion module and dataset."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dpfusion import api
from dpfusion.cli import main
from dpfusion.eval import sweep as sweep_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_metric_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DPFUSION_CACHE", str(tmp_path / "empty-cache"))


@pytest.fixture
def fake_clock(monkeypatch):
    """Every timed interval lasts exactly 1 s, so two runs of the same sweep write identical files."""

    def reset():
        ticks = iter(range(10**6))
        monkeypatch.setattr(sweep_module, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))

    reset()
    return reset


def eval_args(eval_files, output: Path, *extra: str) -> list[str]:
    return [
        "eval",
        eval_files.data,
        "-o",
        output,
        *eval_files.model_args,
        "--rates",
        "0,1,3",
        "--taus",
        "0,0.5,1",
        "--steps",
        "2",
        "--metrics",
        "psnr,lpips_alex,fid",
        "--baselines",
        "jpeg",
        "--jpeg-qualities",
        "20,50,90",
        "-q",
        "--no-image-dial",
        *extra,
    ]


@pytest.fixture
def results(eval_files, tmp_path, capsys, fake_clock) -> Path:
    output = tmp_path / "full" / "results.json"
    code, _, err = run_cli(capsys, *eval_args(eval_files, output))
    assert code == 0, err
    return output


def test_eval_writes_results_curves_and_csv(results, capsys):
    doc = json.loads(results.read_text())
    assert doc["format"] == "dpfusion-eval/1"
    assert doc["unavailable_metrics"].keys() == {"lpips_alex", "fid"}  # listed with reasons, not dropped
    assert all("dpfusion weights prepare" in reason for reason in doc["unavailable_metrics"].values())
    ids = [c["id"] for c in doc["curves"]]
    assert ids == ["tau0", "tau0.5", "tau1", "jpeg"]
    tau0, tau1 = doc["curves"][0], doc["curves"][2]
    assert tau0["rates"] == [0.0, 1.0, 3.0]
    assert tau0["results"]["bpp"] == tau1["results"]["bpp"]  # one bitstream per rate, decoded at every tau
    assert tau1["results"]["psnr"] != tau0["results"]["psnr"]
    assert tau1["results"]["bpp"] == sorted(tau1["results"]["bpp"])
    rows = list(csv.DictReader(results.with_suffix(".csv").open()))
    assert len(rows) == len(doc["per_image"]) == 2 * (3 * 3 + 3)
    for curve in doc["curves"]:
        file = results.parent / "results" / f"{curve['id']}.json"
        data = json.loads(file.read_text())
        assert data["name"] == curve["name"] and data["results"]["psnr-rgb"] == curve["results"]["psnr"]


def test_compressai_plot_tool_reads_the_curve_files(results, tmp_path):
    files = sorted((results.parent / "results").glob("*.json"))
    out = tmp_path / "rd.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "compressai.utils.plot", "--results-file", *map(str, files), "-m", "psnr"]
    done = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_interrupted_eval_resumes_to_the_same_results(eval_files, results, tmp_path, capsys, monkeypatch, fake_clock):
    output = tmp_path / "resumed" / "results.json"
    original = api.Model.decompress_many
    calls = []

    def dying(self, *args, **kwargs):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(api.Model, "decompress_many", dying)
    code, _, err = run_cli(capsys, *eval_args(eval_files, output))
    assert code == 130 and "interrupted" in err
    assert not output.exists()  # the final JSON only appears when the sweep is complete

    fake_clock()
    calls.clear()
    monkeypatch.setattr(api.Model, "decompress_many", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    code, _, err = run_cli(capsys, *eval_args(eval_files, output))
    assert code == 0, err
    assert len(calls) == 2 * 3 - 4  # only the units the journal lacks
    assert output.read_text() == results.read_text()
    assert output.with_suffix(".csv").read_text() == results.with_suffix(".csv").read_text()


def test_eval_errors_are_one_line(eval_files, tmp_path, capsys):
    code, _, err = run_cli(capsys, *eval_args(eval_files, tmp_path / "r.json")[:-1], "--metrics", "psnr,nope")
    assert code == 1 and "unknown metric(s) nope" in err
    args = ["eval", eval_files.data, "-o", tmp_path / "r.json", "--model", "gain-hyperprior"]
    code, _, err = run_cli(capsys, *args, "--checkpoint", eval_files.checkpoint, "--taus", "0,1", "-q")
    assert code == 1 and "needs a fusion module" in err
    code, _, err = run_cli(capsys, "eval", tmp_path / "missing", "-o", tmp_path / "r.json", "-q")
    assert code == 1 and "dataset folder not found" in err


def _curve(path: Path, name: str, rates, values, metric: str) -> Path:
    path.write_text(json.dumps({"name": name, "results": {"bpp": list(rates), metric: list(values)}}))
    return path


@pytest.mark.parametrize("metric", ["psnr", "lpips_alex"])
def test_bdrate_of_a_curve_shifted_by_a_constant_rate_factor(tmp_path, capsys, metric):
    import math

    rates = [0.1, 0.2, 0.4, 0.8, 1.6]
    slope = 3 if metric == "psnr" else -0.05  # quality rises with the rate: PSNR up, LPIPS down
    values = [(30 if metric == "psnr" else 0.3) + slope * math.log(r) for r in rates]
    anchor = _curve(tmp_path / "a.json", "anchor", rates, values, metric)
    test = _curve(tmp_path / "b.json", "test", [0.8 * r for r in rates], values, metric)
    code, out, err = run_cli(capsys, "bdrate", anchor, test, "--metric", metric, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["bd_rate"] == pytest.approx(-20.0, abs=1e-6)
    assert result["bd_metric"] == pytest.approx(-slope * math.log(0.8), rel=1e-6)
    assert result["better"] == ("higher" if metric == "psnr" else "lower")
    code, out, _ = run_cli(capsys, "bdrate", anchor, test, "--metric", metric)
    assert "-20.00 %" in out and "better" in out


def test_bdrate_picks_curves_out_of_a_results_file(tmp_path, capsys):
    curves = [
        {
            "id": cid,
            "name": cid,
            "kind": "dpfusion",
            "tau": tau,
            "results": {"bpp": bpp, "psnr": [25.0, 28, 31, 34, 37]},
        }
        for cid, tau, bpp in (("tau1", 1.0, [0.1, 0.2, 0.4, 0.8, 1.6]), ("tau0", 0.0, [0.08, 0.16, 0.32, 0.64, 1.28]))
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format": "dpfusion-eval/1", "curves": curves, "metrics": {}, "settings": {}}))
    code, out, err = run_cli(capsys, "bdrate", f"{path}#tau1", f"{path}#tau0", "--metric", "psnr", "--json")
    assert code == 0, err
    assert json.loads(out)["bd_rate"] == pytest.approx(-20.0)
    code, _, err = run_cli(capsys, "bdrate", f"{path}#nope", f"{path}#tau0")
    assert code == 1 and "no curve 'nope'" in err
    code, _, err = run_cli(capsys, "bdrate", path, f"{path}#tau0")
    assert code == 1 and "pick one" in err


def test_bdrate_refuses_non_monotonic_curves(tmp_path, capsys):
    anchor = _curve(tmp_path / "a.json", "a", [0.1, 0.2, 0.4], [30.0, 29.0, 33.0], "psnr")
    test = _curve(tmp_path / "b.json", "b", [0.1, 0.2, 0.4], [0.5, 0.4, 0.3], "lpips_alex")
    code, _, err = run_cli(capsys, "bdrate", anchor, anchor, "--metric", "psnr")
    assert code == 1 and "does not improve" in err
    code, _, err = run_cli(capsys, "bdrate", anchor, test, "--metric", "lpips_alex")
    assert code == 1 and "has no lpips_alex values" in err


def test_plot_writes_pngs(results, tmp_path, capsys):
    out = tmp_path / "figures"
    code, stdout, err = run_cli(capsys, "plot", results, "-o", out)
    assert code == 0, err
    names = sorted(p.name for p in out.glob("*.png"))
    assert "rate_psnr.png" in names and "tau_psnr.png" in names
    for path in out.glob("*.png"):
        assert path.stat().st_size > 1000 and path.read_bytes().startswith(PNG_MAGIC)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_plot_steps_figure_when_several_step_counts(eval_files, tmp_path, capsys):
    output = tmp_path / "steps" / "results.json"
    argv = eval_args(eval_files, output)
    argv[argv.index("--steps") + 1] = "1,2"
    argv[argv.index("--rates") + 1] = "0,3"
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(output.read_text())
    assert {c["id"] for c in doc["curves"]} >= {"tau0_steps1", "tau0_steps2"}
    code, _, err = run_cli(capsys, "plot", output, "-o", tmp_path / "fig")
    assert code == 0, err
    assert (tmp_path / "fig" / "steps.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_grid(eval_files, tmp_path, capsys):
    dpf = tmp_path / "a.dpf"
    code, _, err = run_cli(
        capsys, "compress", eval_files.data / "a.png", "-o", dpf, "--quality", "2", *eval_files.model_args[:4]
    )
    assert code == 0, err
    out = tmp_path / "grid.png"
    argv = ["plot-grid", dpf, "-o", out, "--tau", "1,0", "--steps", "2", "--original", eval_files.data / "a.png"]
    code, stdout, err = run_cli(capsys, *argv, *eval_files.model_args[2:], "--crop", "4,4,16,16")
    assert code == 0, err
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 1000


def test_compressai_eval_output_and_curve_folders_are_accepted(results, tmp_path, capsys):
    """CompressAI's own `eval_model` JSON (psnr-rgb, no psnr key) works for bdrate; a curve folder for plot."""
    rates = [0.1, 0.2, 0.4, 0.8, 1.6]
    theirs = {"name": "bmshj2018", "description": "x", "results": {"bpp": rates, "psnr-rgb": [27, 29, 31, 33, 35]}}
    ours = {"name": "ours", "results": {"bpp": [0.8 * r for r in rates], "psnr": [27, 29, 31, 33, 35]}}
    (tmp_path / "theirs.json").write_text(json.dumps(theirs))
    (tmp_path / "ours.json").write_text(json.dumps(ours))
    code, out, err = run_cli(capsys, "bdrate", tmp_path / "theirs.json", tmp_path / "ours.json", "--json")
    assert code == 0, err
    assert json.loads(out)["bd_rate"] == pytest.approx(-20.0)
    code, _, err = run_cli(capsys, "plot", results.parent / "results", tmp_path / "theirs.json", "-o", tmp_path / "f")
    assert code == 0, err
    assert (tmp_path / "f" / "rate_psnr.png").read_bytes().startswith(PNG_MAGIC)


def test_curve_files_keep_their_tau_for_the_figures(results, tmp_path, capsys):
    from dpfusion.eval.results_io import load_results

    folder = load_results(results.parent / "results")
    whole = load_results(results)
    assert sorted((c.id, c.kind, c.tau) for c in folder.curves) == sorted((c.id, c.kind, c.tau) for c in whole.curves)
    assert load_results(results).to_dict() == json.loads(results.read_text())  # results.json reads back unchanged
    code, _, err = run_cli(capsys, "plot", results.parent / "results", "-o", tmp_path / "f")
    assert code == 0, err
    assert (tmp_path / "f" / "tau_psnr.png").is_file()


def test_a_resumed_eval_reuses_rows_only_of_the_same_sampler_and_steps(eval_files, tmp_path, capsys, monkeypatch):
    output = tmp_path / "r.json"
    original = api.Model.decompress_many
    calls = []
    monkeypatch.setattr(api.Model, "decompress_many", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    common = ["eval", eval_files.data, "-o", output, *eval_files.model_args, "--rates", "0", "--taus", "0,1"]
    common += ["--metrics", "psnr", "--baselines", "none", "-q"]
    runs = [  # (extra options, decodes expected: the 2 images, or none when the journal holds them)
        ([], 2),
        (["--sampler", "ddim"], 0),  # the module's own sampler: the same decode as the default
        (["--sampler", "x0"], 2),
        (["--sampler", "x0"], 0),
        (["--sampler", "x0", "--steps", "2"], 2),
        (["--steps", "2"], 2),
    ]
    for extra, expected in runs:
        calls.clear()
        code, _, err = run_cli(capsys, *common, *extra)
        assert code == 0, err
        assert len(calls) == expected, extra
    default = json.loads(output.read_text())["settings"]
    assert run_cli(capsys, *common, "--sampler", "x0")[0] == 0
    x0 = json.loads(output.read_text())["settings"]
    assert (default["sampler"], x0["sampler"]) == (None, "x0")
    assert x0["signatures"]["0"] == default["signatures"]["0"] + ":sampler=x0"
