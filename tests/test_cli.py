"""The bayescale console script, run end to end as a user would (fresh processes)."""

import json
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest


def _script():
    here = Path(sys.executable).parent / "bayescale"
    found = str(here) if here.exists() else shutil.which("bayescale")
    assert found, "the bayescale console script is not installed (pip install -e .)"
    return found


SCRIPT = _script()


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """One CLI fit of the bundled Chinchilla CSV in its published column names, reused by every test."""
    folder = tmp_path_factory.mktemp("cli")
    csv = folder / "runs.csv"
    csv.write_bytes(files("bayescale.datasets").joinpath("chinchilla_runs_epoch2024.csv").read_bytes())
    out = folder / "fit.nc"
    proc = run("fit", csv, "--law", "chinchilla", "-o", out, "--seed", 3, "--draws", 500, "--tune", 500,
               "--columns", "Model Size=N,Training FLOP=C")
    assert proc.returncode == 0, proc.stderr
    assert "Saved to" in proc.stdout and "alpha" in proc.stdout
    return out


def test_fit_writes_a_loadable_file(fit_file):
    import bayescale as bs

    fit = bs.load(fit_file)
    assert fit.runs.n_runs == 245 and fit.settings["draws"] == 500 and fit.settings["random_seed"] == 3


def test_summary(fit_file):
    proc = run("summary", fit_file)
    assert proc.returncode == 0, proc.stderr
    assert "[[Parameters]]" in proc.stdout and "[[Diagnostics]]" in proc.stdout


def test_risk_table_and_markdown(fit_file):
    proc = run("risk", fit_file, "--budget", "1e24", "--budget", "5.88e23", "--target", "1.9",
               "--plan", "70e9:1.4e12", "--format", "md")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "## Compute-optimal allocation" in out and "## Compute needed to reach loss 1.9" in out
    assert "| plan | 70B params on 1.4T tokens | 5.88e23 FLOP |" in out
    assert "P(loss <= 1.9)" in out
    proc = run("risk", fit_file, "--budget", "1e24", "--max-unique-tokens", "1T")
    assert proc.returncode == 0, proc.stderr
    assert "data-bound from" in proc.stdout and "1e24 FLOP" in proc.stdout


def test_risk_machine_formats(fit_file):
    proc = run("risk", fit_file, "--budget", "1e24", "--plan", "70B:1.4T", "--target", "1.95", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"allocation", "risk", "budget_for"}
    assert data["risk"][1]["N"] == 70e9 and 0 <= data["risk"][1]["p_target"] <= 1
    assert 10 < data["allocation"][0]["tokens_per_param_median"] < 40
    proc = run("risk", fit_file, "--plan", "70B:1.4T", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(StringIO(proc.stdout))
    assert table.shape[0] == 1 and table["D"].iloc[0] == 1.4e12 and "new_run_upper" in table


@pytest.mark.parametrize("kind", ["frontier", "allocation", "isoflop"])
def test_plot(fit_file, kind, tmp_path):
    out = tmp_path / f"{kind}.png"
    proc = run("plot", fit_file, "-o", out, "--kind", kind, "--budget", "1e24")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


def test_errors_are_one_line_and_non_zero(fit_file, tmp_path):
    cases = [
        (("risk", tmp_path / "missing.nc", "--budget", "1e24"), 1, "no fit file"),
        (("risk", fit_file, "--budget", "lots"), 2, "cannot read 'lots'"),
        (("risk", fit_file), 1, "at least one --budget"),
        (("risk", fit_file, "--plan", "70B"), 1, "PARAMS:TOKENS"),
        (("plot", fit_file, "-o", tmp_path / "fig.xyz"), 1, "not supported"),
        (("fit", tmp_path / "none.csv", "-o", tmp_path / "f.nc"), 1, "none.csv"),
        (("fit", fit_file, "-o", tmp_path / "f.nc", "--columns", "Model Size"), 1, "--columns"),
        (("fit", fit_file, "-o", tmp_path / "f.nc", "--law", "nope"), 2, "invalid choice"),
        (("frobnicate",), 2, "invalid choice"),
        (("fit", fit_file, "-o", tmp_path / "f.nc", "--model", "chinchilla", "--law", "kaplan"), 1, "--model"),
        (("fit", fit_file, "-o", tmp_path / "f.nc", "--model", "no_such_spec"), 1, "shipped specs: chinchilla"),
    ]
    for args, code, text in cases:
        proc = run(*args)
        assert proc.returncode == code, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0] and lines[0].startswith("bayescale"), (args, proc.stderr)
    assert not (tmp_path / "f.nc").exists() and not list(tmp_path.glob("*.xyz"))


def test_help_on_every_command():
    for command in ([], ["fit"], ["summary"], ["risk"], ["plot"], ["demo"]):
        proc = run(*command, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith("usage: bayescale"), command
        assert "--help" in proc.stdout


def test_fit_from_a_spec_file(tmp_path):
    """--model takes a TOML spec: its priors reach the fit (a tight alpha prior pins alpha)."""
    spec = tmp_path / "tight.toml"
    spec.write_text('name = "tight"\nlaw = "chinchilla"\n[priors]\n'
                    'alpha = { family = "LogNormal", mu = -1.2040, sigma = 0.005 }\n')  # alpha ~ 0.3 +- 0.5%
    csv = tmp_path / "runs.csv"
    csv.write_bytes(files("bayescale.datasets").joinpath("chinchilla_runs_epoch2024.csv").read_bytes())
    out = tmp_path / "fit.nc"
    proc = run("fit", csv, "--model", spec, "-o", out, "--seed", 1, "--draws", 200, "--tune", 300,
               "--columns", "Model Size=N,Training FLOP=C")
    assert proc.returncode == 0, proc.stderr
    import bayescale as bs

    fit = bs.load(out)
    assert fit.model.name == "tight"
    # The data alone put alpha near 0.345 (sd ~0.01); a prior sd of 0.0015 must dominate.
    assert abs(fit.summary().loc["alpha", "median"] - 0.3) < 0.005


def test_fit_by_key_writes_a_folder_records_failures_and_resumes(tmp_path):
    import bayescale as bs

    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    runs = runs.assign(task=["a" if i % 2 else "b" for i in range(len(runs))])
    runs.loc[runs.index[:3], "task"] = "tiny"  # 3 runs: fewer than the law's 7 parameters
    csv = tmp_path / "runs.csv"
    runs[["N", "D", "loss", "task"]].to_csv(csv, index=False)
    folder = tmp_path / "fits"
    args = ("fit", csv, "--by", "task", "-o", folder, "--seed", 1, "--draws", 500, "--tune", 500)
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "2 converged" in proc.stdout and "1 failed" in proc.stdout and "need at least 7 runs" in proc.stdout
    assert sorted(p.name.split("-")[0] for p in folder.glob("*.nc")) == ["a", "b"]
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.nc")}
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert "2 resumed from checkpoint" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.nc")} == stamps  # nothing refitted
    summary = run("summary", folder)
    assert summary.returncode == 0, summary.stderr
    table = summary.stdout
    assert "task parameter" in table and "converged" in table
    risk = run("risk", folder, "--budget", "1e24", "--format", "csv")
    assert risk.returncode == 0, risk.stderr
    frame = pd.read_csv(StringIO(risk.stdout))
    assert sorted(frame["task"]) == ["a", "b"] and frame["converged"].dtype == bool


def test_demo_prints_posterior_point_fit_and_risk_bands():
    """The README's main job: real fit, side-by-side point estimate, risk-band tables."""
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in (["E"], ["alpha"])}
    # posterior medians inside the published 95% bootstrap intervals of the replication
    assert 1.769 <= float(rows["E"][0]) <= 1.871 and 0.317 <= float(rows["alpha"][0]) <= 0.373
    assert float(rows["alpha"][-1]) == pytest.approx(0.3473, rel=0.01)  # Approach 3 column
    for heading in ("Predicted loss for untrained configurations", "Compute-optimal allocation",
                    "Approach 3 point estimate", "Compute needed to reach a loss of 1.9"):
        assert heading in out
    assert "converged: NO" not in out and " no\n" not in out
