"""fit_many: a real Dask LocalCluster end to end, failing keys, combined tables, checkpoints.

Every batch here uses the default Chinchilla model (one graph: compiled once in each Dask worker and
once in this process), 2 chains x 300 draws, on small synthetic eval sets whose true E differs by key,
so a fit attached to the wrong key is caught.
"""

import concurrent.futures as cf
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.many.resume import key_seed
from bayescale.many.executors import pool_slots
from bayescale.base.progress import KeyProgress
from conftest import TRUE_CHINCHILLA, simulate_chinchilla

#: Only the tests on a Dask LocalCluster need distributed (the "dask" extra, installed by the "test" extra);
#: checkpoints, resumption and argument checks run on process pools without it.
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="distributed is not installed (pip install 'bayescale[dask]')")

SETTINGS = dict(draws=300, tune=300, chains=2)
TRUE_E = {"arc": 1.7, "mmlu": 1.9, "gsm8k": 2.1}


def eval_sets(n_runs=60) -> pd.DataFrame:
    """Three good eval sets (true E by key) plus two bad ones: a negative loss, and too few runs."""
    parts = []
    for i, (name, E) in enumerate(TRUE_E.items()):
        part = simulate_chinchilla({**TRUE_CHINCHILLA, "E": E}, n_runs=n_runs, seed=10 + i)
        parts.append(part.assign(eval_set=name))
    broken = simulate_chinchilla(n_runs=30, seed=20).assign(eval_set="broken")
    broken.loc[4, "loss"] = -2.5
    tiny = simulate_chinchilla(n_runs=3, seed=21).assign(eval_set="tiny")
    return pd.concat(parts + [broken, tiny], ignore_index=True)


@pytest.fixture(scope="module")
def runs():
    return eval_sets()


@pytest.fixture(scope="module")
def cluster_batch(runs):
    """fit_many on a real 2-worker LocalCluster (separate processes), through a distributed Client."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = bs.fit_many(bs.ScalingModel("chinchilla"), runs, by="eval_set", executor=client,
                           random_seed=7, progressbar=False, **SETTINGS)
        fits.slots = pool_slots(client.get_executor())  # what the progress bar counts as running at most
    return fits, [w for w in caught if issubclass(w.category, bs.BatchWarning)]


@needs_dask
def test_cluster_fits_every_good_key_and_records_the_bad_ones(cluster_batch, runs):
    fits, batch_warnings = cluster_batch
    assert fits.keys_all == ["arc", "mmlu", "gsm8k", "broken", "tiny"]  # order of first appearance
    assert list(fits) == ["arc", "mmlu", "gsm8k"]
    assert set(fits.errors) == {"broken", "tiny"}
    bad_row = runs.index[(runs.eval_set == "broken") & (runs.loss < 0)][0]
    assert f"row {bad_row}, column 'loss'" in fits.errors["broken"] and "DataError" in fits.errors["broken"]
    assert "need at least 7 runs" in fits.errors["tiny"]
    with pytest.raises(KeyError, match="'broken' failed: DataError"):
        fits["broken"]
    assert len(batch_warnings) == 1
    assert "2 of 5 keys failed" in str(batch_warnings[0].message) and "'tiny'" in str(batch_warnings[0].message)
    # Each key got its own data: E differs by 0.2 between keys; its posterior sd here is ~0.02, so a
    # 5-sd window (false alarm ~1e-6 per key) cannot hold a neighbour's E.
    for key, E in TRUE_E.items():
        row = fits[key].summary().loc["E"]
        assert abs(row["median"] - E) < 5 * row["sd"], (key, row["median"], row["sd"])
        assert row["sd"] < 0.04
        assert fits[key].settings["random_seed"] == key_seed(7, key) == fits.seeds[key]


@needs_dask
def test_combined_tables_have_the_key_and_a_converged_column(cluster_batch):
    fits, _ = cluster_batch
    verdict = {k: fits[k].converged for k in fits}
    tables = {
        "summary": fits.summary(),
        "predict": fits.predict({"N": [1e9, 7e10], "D": [2e10, 1.4e12]}),
        "allocate": fits.allocate([1e21, 1e24]),
        "risk": fits.risk([1e22], target=2.5),
        "apply": fits.apply(lambda fit: fit.budget_for(2.6)),
    }
    for name, table in tables.items():
        assert table.columns[0] == "eval_set", name
        assert table["converged"].dtype == bool, name
        assert list(dict.fromkeys(table["eval_set"])) == ["arc", "mmlu", "gsm8k"], name
        for key, part in table.groupby("eval_set"):
            assert (part["converged"] == verdict[key]).all(), (name, key)
    summary = tables["summary"].set_index(["eval_set", "parameter"])
    assert summary.loc[("mmlu", "E"), "median"] == fits["mmlu"].summary().loc["E", "median"]
    assert len(tables["predict"]) == 3 * 2 and len(tables["allocate"]) == 3 * 2
    diag = fits.diagnostics().set_index("eval_set")
    assert diag.loc["broken", "status"] == "failed" and not diag.loc["broken", "converged"]
    assert diag.loc["tiny", "error"].startswith("DataError")
    for key in TRUE_E:
        assert diag.loc[key, "status"] == ("ok" if verdict[key] else "not converged")
    text = repr(fits)
    assert "5 keys" in text and "2 failed" in text


@needs_dask
def test_a_key_fits_the_same_whatever_the_executor_or_the_order_of_keys(cluster_batch, runs):
    """Seeds come from the batch seed and the key, not from the executor or the order of the keys."""
    fits, _ = cluster_batch
    good = pd.concat([runs[runs.eval_set == "gsm8k"], runs[runs.eval_set == "arc"]])  # keys in another order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.BatchWarning)
        with cf.ThreadPoolExecutor(1) as pool:
            one = bs.fit_many(bs.ScalingModel("chinchilla"), runs[runs.eval_set == "gsm8k"], by="eval_set",
                              executor=pool, random_seed=7, progressbar=False, **SETTINGS)
        with cf.ThreadPoolExecutor(2) as pool:
            both = bs.fit_many(bs.ScalingModel("chinchilla"), good, by="eval_set", executor=pool,
                               random_seed=7, progressbar=False, **SETTINGS)
    # In one process the draws are identical, bit for bit.
    np.testing.assert_array_equal(one["gsm8k"].posterior["alpha"].values, both["gsm8k"].posterior["alpha"].values)
    # Another process may differ in the last bits of its compiled code, and NUTS amplifies any such
    # difference into different draws of the same posterior: compare the posteriors. The medians of two
    # independent 600-draw samples differ by about 0.15 posterior sd (MCSE at ESS ~ 200); 0.75 sd is ~5 of those.
    for name in ("E", "alpha", "beta"):
        a, b = one["gsm8k"].posterior[name], fits["gsm8k"].posterior[name]
        assert abs(float(a.median()) - float(b.median())) < 0.75 * float(b.std()), name


@needs_dask
def test_progress_counts_done_failed_and_running(cluster_batch):
    fits, _ = cluster_batch
    assert fits.slots == 2  # 2 workers x 1 thread
    assert pool_slots(cf.ThreadPoolExecutor(3)) == 3
    out = io.StringIO()
    bar = KeyProgress(5, enabled=True, backend="rich", stream=out, initial=1, description="fits")
    bar.update(ok=3, failed=1, running=1)
    bar.close()
    text = out.getvalue()
    assert "4/5" in text and "3 ok, 1 failed, 1 running" in text
    quiet = KeyProgress(5, stream=io.StringIO())  # not a terminal: off by default
    assert not quiet.enabled and quiet.backend is None


def test_bad_batch_arguments_name_the_problem(runs):
    model = bs.ScalingModel("chinchilla")
    with pytest.raises(bs.DataError, match="by= names column 'task'.*'eval_set'"):
        bs.fit_many(model, runs, by="task")
    holes = runs.copy()
    holes.loc[7, "eval_set"] = None
    with pytest.raises(bs.DataError, match=r"row 7, column\(s\) \['eval_set'\]: missing key value"):
        bs.fit_many(model, holes, by="eval_set")
    with pytest.raises(ValueError, match="input of the law or the loss"):
        bs.fit_many(model, runs, by="N")
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        bs.fit_many(model, runs, by="eval_set", draws=0)
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        bs.fit_many(model, runs, by="eval_set", executor="localhost:8786")


# ------------------------------------------------------------------ kill and resume
KEYS = [f"set{i}" for i in range(8)]

SCRIPT = textwrap.dedent("""
    import concurrent.futures as cf, sys, warnings
    import bayescale as bs
    warnings.simplefilter("ignore")
    with cf.ThreadPoolExecutor(1) as pool:  # one fit at a time, in this process
        bs.fit_many(bs.ScalingModel("chinchilla"), sys.argv[1], by="eval_set", executor=pool,
                    checkpoint_dir=sys.argv[2], random_seed=3, progressbar=False, draws=300, tune=300, chains=2)
    """)


def _checkpoints(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.nc")}


@pytest.fixture(scope="module")
def killed_batch(tmp_path_factory):
    """A batch of 8 keys in a subprocess, killed (SIGKILL) once 2 fits are checkpointed, then rerun."""
    tmp = tmp_path_factory.mktemp("resume")
    parts = [simulate_chinchilla(n_runs=40, seed=30 + i).assign(eval_set=key) for i, key in enumerate(KEYS)]
    csv = tmp / "runs.csv"
    pd.concat(parts, ignore_index=True).to_csv(csv, index=False)
    folder = tmp / "fits"
    script = tmp / "batch.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(csv), str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while len(_checkpoints(folder) if folder.is_dir() else {}) < 2:
            if proc.poll() is not None:
                pytest.fail(f"the batch ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint appeared within 300 s")
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _checkpoints(folder)
    time.sleep(0.05)  # mtime resolution: a rewritten file would get a later stamp
    with cf.ThreadPoolExecutor(1) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.BatchWarning)
        fits = bs.fit_many(bs.ScalingModel("chinchilla"), csv, by="eval_set", executor=pool, checkpoint_dir=folder,
                           progressbar=False, **SETTINGS)  # random_seed=None: the folder's seed is used
    return csv, folder, before, fits


def test_killed_batch_resumes_without_losing_or_redoing_a_fit(killed_batch):
    csv, folder, before, fits = killed_batch
    assert 2 <= len(before) < len(KEYS), "the kill must land mid-batch"
    after = _checkpoints(folder)
    # no fit lost: every key is there; none redone: the files written before the kill are untouched
    assert list(fits) == KEYS and not fits.errors
    assert {n: after[n] for n in before} == before
    resumed = {name.split("-")[0] for name in before}
    assert set(fits.resumed) == resumed
    assert len(after) == len(KEYS)
    assert not list(folder.glob(".*.tmp")), "temporary files of the killed save were left behind"
    assert fits.random_seed == 3 and all(fits[k].settings["random_seed"] == key_seed(3, k) for k in KEYS)
    index = json.loads((folder / "index.json").read_text())
    assert sorted(entry["key"][0] for entry in index["fits"].values()) == KEYS
    # the folder reads back as the same collection
    loaded = bs.FitCollection.load(folder)
    assert sorted(loaded) == KEYS
    pd.testing.assert_frame_equal(loaded.summary().sort_values(["eval_set", "parameter"], ignore_index=True),
                                  fits.summary().sort_values(["eval_set", "parameter"], ignore_index=True))


def test_checkpoint_refits_only_keys_whose_data_changed(killed_batch):
    csv, folder, _, _ = killed_batch
    stamps = _checkpoints(folder)
    frame = pd.read_csv(csv)
    frame.loc[frame.eval_set == "set5", "loss"] *= 1.01
    time.sleep(0.05)
    with cf.ThreadPoolExecutor(1) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.BatchWarning)
        fits = bs.fit_many(bs.ScalingModel("chinchilla"), frame, by="eval_set", executor=pool,
                           checkpoint_dir=folder, progressbar=False, **SETTINGS)
    assert sorted(fits.resumed) == [k for k in KEYS if k != "set5"]
    changed = {n for n, t in _checkpoints(folder).items() if stamps.get(n) != t}
    assert [n.split("-")[0] for n in changed] == ["set5"]


def test_checkpoint_refuses_other_settings_or_seed(killed_batch):
    csv, folder, _, _ = killed_batch
    model = bs.ScalingModel("chinchilla")
    with pytest.raises(bs.BayescaleError, match="different settings"):
        bs.fit_many(model, csv, by="eval_set", checkpoint_dir=folder, draws=301, tune=300, chains=2)
    with pytest.raises(bs.BayescaleError, match="different model"):
        bs.fit_many(bs.ScalingModel("chinchilla", likelihood="normal"), csv, by="eval_set", checkpoint_dir=folder,
                    **SETTINGS)
    with pytest.raises(bs.BayescaleError, match="random_seed=3"):
        bs.fit_many(model, csv, by="eval_set", checkpoint_dir=folder, random_seed=4, **SETTINGS)


def test_fits_the_index_misses_are_found_on_load_with_a_warning(killed_batch, tmp_path, capsys):
    """A writer killed between a fit file and the index, or an index overwritten by another writer: the fit files
    on disk are loaded from the key they carry, and the warning names them; files that are not fits are named."""
    import shutil

    from bayescale.front.cli import main

    _, folder, _, _ = killed_batch
    copy = tmp_path / "fits"
    shutil.copytree(folder, copy)
    index = json.loads((copy / "index.json").read_text())
    dropped = sorted(index["fits"])[:3]
    for name in dropped:
        del index["fits"][name]
    (copy / "index.json").write_text(json.dumps(index))
    (copy / "notes.nc").write_bytes(b"not a fit")
    with pytest.warns(bs.BatchWarning, match=r"does not list 4 fit file\(s\).*loaded 3 .*left out: notes\.nc"):
        loaded = bs.FitCollection.load(copy)
    assert sorted(loaded) == KEYS and not loaded.errors
    assert main(["summary", str(copy)]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in KEYS)
