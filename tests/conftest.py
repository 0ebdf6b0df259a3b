"""Shared fixtures: fitted models are expensive (a cold compile is ~20 s), so fit once per session."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs

TRUE_CHINCHILLA = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)

#: The longest test files, longest first (seconds on one of two CI workers: notebook 08 196-236, the other
#: notebooks 100-150, point fits 85-126, SBC 75-113, the CLI about 100, many fits 60-90, downstream 55-80,
#: risk 50-75). They run first: with --dist loadfile, pytest-xdist hands out files in collection order, and
#: notebook 08 run late leaves one worker running it alone for its last 2-3 minutes.
LONGEST_FIRST = ("test_notebook_downstream.py", "test_notebooks.py", "test_point.py", "test_sbc.py", "test_cli.py",
                 "test_batch.py", "test_downstream.py", "test_risk.py")


def pytest_configure(config):
    # pytest-xdist (3.7 on) reorders files by their number of tests, most first, unless told not to: notebook 08,
    # one test, then ran last (it started 7:42 into a warm run of 10:56, and ran alone for most of its 3:14).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: files stay whole, in order


@pytest.fixture(scope="session")
def chinchilla_runs():
    """The 240 Chinchilla runs the published replication keeps."""
    return bs.datasets.load_chinchilla(drop_outliers=True)


@pytest.fixture(scope="session")
def a3(chinchilla_runs):
    """Approach 3 (Hoffmann et al. 2022, Besiroglu et al. 2024 procedure) on the bundled Chinchilla runs."""
    return bs.Approach3().fit(chinchilla_runs)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs):
    """Default model on the 240 Chinchilla runs, seed 1, 4 chains x 1000 draws."""
    return bs.ScalingModel("chinchilla").fit(chinchilla_runs, random_seed=1)


def simulate_chinchilla(params=TRUE_CHINCHILLA, n_runs=120, sigma=0.01, seed=0, nu=None):
    """Synthetic runs on a log-uniform (N, D) design with noise on log loss."""
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7.5, 10.5, n_runs)
    D = N * 10 ** rng.uniform(0.3, 2.3, n_runs)
    law = bs.get_law("chinchilla")
    noise = rng.standard_t(nu, n_runs) if nu else rng.standard_normal(n_runs)
    loss = law.loss({"N": N, "D": D}, params) * np.exp(sigma * noise)
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


@pytest.fixture(scope="session")
def synthetic_runs():
    return simulate_chinchilla()


@pytest.fixture(scope="session")
def synthetic_fit(synthetic_runs):
    """Default model on synthetic Chinchilla-form runs with known parameters (TRUE_CHINCHILLA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        return bs.ScalingModel("chinchilla").fit(synthetic_runs, random_seed=2)


@pytest.fixture(scope="session")
def synthetic_fit_known_form(synthetic_runs):
    """The same runs under the model whose form is known (form_uncertainty=None): exact law numerics far out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        return bs.ScalingModel("chinchilla", form_uncertainty=None).fit(synthetic_runs, random_seed=2)


@pytest.fixture(scope="session")
def power_n_fit(synthetic_runs):
    """A law that ignores the data term, on runs whose loss depends on D (LOO comparison, model averaging)."""
    return bs.ScalingModel("power_n").fit(synthetic_runs, draws=500, tune=500, chains=4, random_seed=4)


#: Three groups for fits that vary in level coordinates (tests/test_pooling.py, tests/test_contrasts.py):
#: every parameter differs between them (alpha 0.25, 0.34, 0.45), with 3% noise in g1 against 0.5%.
LEVEL_GROUPS = dict(E=np.array([1.7, 1.9, 1.8]), A=np.array([150.0, 500.0, 3000.0]),
                    B=np.array([900.0, 2500.0, 1600.0]), alpha=np.array([0.25, 0.34, 0.45]),
                    beta=np.array([0.30, 0.36, 0.33]))
LEVEL_SIGMAS = (0.005, 0.03, 0.005)


def level_groups():
    from bayescale.core.simulate import simulate_groups

    parts = [simulate_groups([30], {k: v[g:g + 1] for k, v in LEVEL_GROUPS.items()}, sigma=sigma,
                             random_seed=20 + g, labels=[f"g{g}"]) for g, sigma in enumerate(LEVEL_SIGMAS)]
    return pd.concat(parts, ignore_index=True)


def fit_once_per_session(name, make, tmp_path_factory, worker_id):
    """`make()` once per test session, also when the suite runs on several workers (pytest-xdist).

    The first worker to ask fits and saves the fit in the session's shared temporary folder; the others wait
    for it and load the file (a saved fit carries every group the tests read, checked by its digests).
    """
    if worker_id == "master":
        return make()
    from bayescale.base.files import folder_lock

    root = tmp_path_factory.getbasetemp().parent
    path = root / f"{name}.nc"
    with folder_lock(root, name=f"{name}.lock"):
        if path.exists():
            return bs.load(path)
        fit = make()
        fit.save(path)
        return fit


@pytest.fixture(scope="session")
def grouped_level_fit(tmp_path_factory, worker_id):
    """Every law parameter partial: the groups vary in level coordinates (about 45 s: fitted once per session)."""
    pooling = {k: "partial" for k in ("E", "A", "B", "alpha", "beta")}
    return fit_once_per_session(
        "grouped_level_fit", lambda: bs.ScalingModel("chinchilla", pooling=pooling).fit(
            level_groups(), random_seed=3, progressbar=False), tmp_path_factory, worker_id)
