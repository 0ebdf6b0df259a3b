"""Simulation-based calibration: a small SBC per shipped law that passes when the model is right and
fails when the simulated noise is deliberately mis-scaled.

Size and error rates. Each law runs two SBCs of 20 simulations on a 24-run design, ranks binned into
4 bins (5 simulations expected per bin, Pearson chi-square with 3 degrees of freedom):
- correct model (noise_scale=1): every parameter's p-value must exceed ``THRESHOLD``;
- wrong likelihood scale (noise_scale=2): sigma's p-value must fall below it.
``THRESHOLD`` is Bonferroni over every p-value the correct SBCs produce (6 laws x their 5-9 parameters),
so the chance that a calibrated model fails anywhere in this file is at most ``SUITE_ALPHA`` = 0.001.
With the noise doubled, sigma's posterior sits near twice the truth (relative sd ~ 1/sqrt(2 * 24) =
0.14) so every true sigma ranks in the bottom bin: chi2 = 60, p ~ 1e-12, far below the threshold.
Twenty simulations only catch gross miscalibration like that; benchmarks/bench_sbc.py runs >= 100
per law for the finer check.
"""

import concurrent.futures as cf
import multiprocessing as mp
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.core.priors import HalfNormal, LogNormal
from bayescale.across.sbc import SBCResult, default_bins, draw_parameters, simulate_runs

matplotlib.use("Agg")

LAWS = ("power_n", "power_d", "power_c", "chinchilla", "kaplan", "data_constrained")
N_SIMS, BINS = 20, 4
SUITE_ALPHA = 1e-3
N_PVALUES = sum(len(bs.ScalingModel(law).param_names) for law in LAWS)
THRESHOLD = SUITE_ALPHA / N_PVALUES  # 37 p-values: 2.7e-5
SAMPLING = dict(draws=100, tune=200, chains=2, n_ranks=99)  # 200 draws thinned to 99 per rank


@pytest.fixture(scope="module")
def pool():
    """Two worker processes shared by every SBC here: each compiles a law's graph once."""
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver")) as executor:
        yield executor


def design_for(law) -> pd.DataFrame:
    """24 real runs: Chinchilla (N, D, C) or, for the data-constrained law, DataBlations (with U)."""
    if law == "data_constrained":
        runs = bs.datasets.load_datablations()
        return runs[runs.loss < 4].sample(24, random_state=0)[["N", "D", "U", "loss"]]
    return bs.datasets.load_chinchilla(drop_outliers=True).sample(24, random_state=0)[["N", "D", "C", "loss"]]


@pytest.mark.parametrize("law", LAWS)
def test_sbc_passes_the_right_model_and_fails_a_wrong_noise_scale(law, pool):
    model = bs.ScalingModel(law)
    design = design_for(law)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        right = bs.sbc(model, design, n_sims=N_SIMS, executor=pool, random_seed=11, progressbar=False, **SAMPLING)
        wrong = bs.sbc(model, design, n_sims=N_SIMS, noise_scale=2.0, executor=pool, random_seed=12,
                       progressbar=False, **SAMPLING)
    for result in (right, wrong):
        assert not result.errors and result.n_sims == N_SIMS
        assert list(result.ranks.columns) == list(model.param_names)
        assert result.ranks.to_numpy().min() >= 0 and result.ranks.to_numpy().max() <= 99
    good, bad = right.test(BINS), wrong.test(BINS)
    assert (good["p_value"] > THRESHOLD).all(), good
    assert bad.loc["sigma", "p_value"] < THRESHOLD, bad
    # how it fails: the true sigma sits below (nearly) every posterior draw
    assert (wrong.ranks["sigma"] < 25).mean() > 0.9


# --------------------------------------------------------------- parts without fitting
def _explicit_power_n():
    return bs.ScalingModel("power_n", likelihood="normal", priors={
        "E": LogNormal(0.5, 0.1), "A": LogNormal(2.0, 0.3, at=1e9), "alpha": LogNormal(-1.0, 0.1),
        "sigma": HalfNormal(0.02)})


def test_draw_parameters_follow_the_priors_and_the_coefficient_convention():
    draws = draw_parameters(_explicit_power_n(), 20000, np.random.default_rng(0))
    # log E ~ N(0.5, 0.1); log(A / 1e9**alpha) ~ N(2.0, 0.3); 4-sigma tolerances on 20000 draws
    assert abs(np.log(draws["E"]).mean() - 0.5) < 4 * 0.1 / np.sqrt(20000)
    centred = np.log(draws["A"]) - draws["alpha"] * np.log(1e9)
    assert abs(centred.mean() - 2.0) < 4 * 0.3 / np.sqrt(20000)
    assert abs(centred.std() - 0.3) < 0.01
    assert abs(np.corrcoef(centred, draws["alpha"])[0, 1]) < 0.03  # drawn independently of the exponent
    assert abs(draws["sigma"].mean() - 0.02 * np.sqrt(2 / np.pi)) < 0.001


def test_simulated_noise_has_the_requested_scale():
    model = _explicit_power_n()
    design = bs.load_runs(pd.DataFrame({"N": np.geomspace(1e7, 1e11, 400)}), require=("N",), require_loss=False)
    params = pd.DataFrame({"E": [1.5], "A": [400.0], "alpha": [0.3], "sigma": [0.02]})
    for scale in (1.0, 3.0):
        sims = simulate_runs(model, design, params, np.random.default_rng(1), noise_scale=scale)
        residual = np.log(sims["loss"]) - np.log(model.law.loss({"N": sims["N"].to_numpy()}, params.iloc[0]))
        assert abs(residual.std() / (0.02 * scale) - 1) < 0.15  # sd of a sd estimate from 400 draws ~3.5%
        assert (sims["sim"] == 0).all() and len(sims) == 400


def test_uniformity_test_and_histograms_on_known_ranks():
    rng = np.random.default_rng(0)
    ranks = pd.DataFrame({"flat": np.tile(np.arange(100), 4), "low": rng.integers(0, 10, 400)})
    converged = pd.Series(True, index=ranks.index)
    converged.iloc[5] = False
    result = SBCResult(_explicit_power_n(), None, None, ranks, 99, converged, {}, None)
    counts = result.counts(10)
    assert counts["flat"].tolist() == [40] * 10 and counts["low"].tolist() == [400] + [0] * 9
    table = result.test(10)
    assert table.loc["flat", "p_value"] == pytest.approx(1.0) and table.loc["low", "p_value"] < 1e-100
    assert table["bins"].tolist() == [10, 10] and table["n_sims"].tolist() == [400, 400]
    assert table["n_not_converged"].tolist() == [1, 1] and not table["converged"].any()
    assert default_bins(99, 400) == 50
    with pytest.raises(ValueError, match="must divide the 100 rank values"):
        result.test(7)
    import matplotlib.pyplot as plt

    from bayescale.base.figure import Figure

    before = plt.get_fignums()
    fig = result.plot(10)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0].startswith("flat (p = 1") and titles[1].startswith("low (p = ")
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # no pyplot: a notebook shows it once


def test_sbc_argument_errors():
    runs = design_for("power_n")
    with pytest.raises(ValueError, match="cannot be thinned to n_ranks = 99"):
        bs.sbc(bs.ScalingModel("power_n"), runs, n_sims=5, draws=40, chains=2)
    with pytest.raises(ValueError, match="noise_scale must be a positive number"):
        bs.sbc(bs.ScalingModel("power_n"), runs, n_sims=5, noise_scale=0)
    with pytest.raises(bs.SpecError, match="use data-scaled defaults.*'loss' column"):
        bs.sbc(bs.ScalingModel("power_n"), runs[["N"]], n_sims=5)
    with pytest.raises(bs.SpecError, match="without groups"):
        bs.sbc(bs.ScalingModel("power_n", pooling={"E": "partial"}), runs.assign(group="a"), n_sims=5)
