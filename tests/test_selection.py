"""LOO model comparison across laws and pooling choices."""

import warnings

import numpy as np
import pytest
from conftest import simulate_chinchilla
from scipy.special import logsumexp

import bayescale as bs
from bayescale.base.errors import DataError, SpecError
from bayescale.analysis.hierarchy import simulate_groups
from bayescale.analysis.selection import compare_loo, describe_model, loo

SAMPLING = dict(draws=500, tune=500, chains=4, random_seed=4)


@pytest.fixture(scope="session")
def grouped():
    """8 groups whose irreducible loss differs by about 5% (sd of log E 0.05), 2% noise."""
    rng = np.random.default_rng(21)
    E = np.exp(np.log(1.8) + 0.05 * rng.standard_normal(8))
    A = np.exp(np.log(480.0) + 0.2 * rng.standard_normal(8))
    return simulate_groups([5, 60, 10, 40, 20, 8, 30, 15], dict(E=E, A=A, B=2100.0, alpha=0.35, beta=0.37),
                           sigma=0.02, seed=21)


@pytest.fixture(scope="session")
def pooling_fits(grouped):
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)  # the shared model is wrong on purpose
        for label, pooling in (("partial", {"E": "partial", "A": "partial"}),
                               ("independent", {"E": "independent", "A": "independent"}), ("shared", {})):
            fits[label] = bs.ScalingModel("chinchilla", pooling=pooling).fit(grouped, **SAMPLING)
    return fits


def test_pooling_choices_are_ranked(pooling_fits):
    """Groups differ in E: one E for all (shared) is far worse than letting E vary, by many standard errors."""
    table = compare_loo(pooling_fits)
    assert list(table.columns) == ["rank", "elpd_loo", "se", "elpd_diff", "dse", "diff_in_se", "p_loo", "weight",
                                   "n_high_k", "law", "pooling", "likelihood", "n_runs", "converged"]
    assert table.index[-1] == "shared"
    assert table.loc["shared", "diff_in_se"] < -4
    assert table.iloc[0]["elpd_diff"] == 0.0 and table.iloc[0]["diff_in_se"] == 0.0
    assert (table["elpd_diff"] <= 0).all() and (table["dse"] >= 0).all() and (table["se"] > 0).all()
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table.loc["partial", "pooling"] == "E partial, A partial" and table.loc["shared", "pooling"] == "shared"
    assert (table["n_runs"] == 188).all()
    assert table.loc[["partial", "independent"], "converged"].all()


def test_laws_are_ranked(synthetic_fit, power_n_fit):
    """On runs simulated from the Chinchilla form, the law without the data term loses clearly."""
    table = compare_loo([synthetic_fit, power_n_fit])
    assert list(table.index) == ["chinchilla", "power_n"]
    assert table.loc["power_n", "diff_in_se"] < -4
    assert table.loc["chinchilla", "weight"] > 0.9


def test_loo_of_one_fit(synthetic_fit):
    """elpd_loo is below the in-sample lppd by p_loo, close to the 7 parameters of the model (120 runs)."""
    result = loo(synthetic_fit)
    ll = synthetic_fit.idata["log_likelihood"]["log_loss"].values.reshape(-1, synthetic_fit.runs.n_runs)
    lppd = float(np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])))
    assert result.elpd < lppd
    assert result.p == pytest.approx(lppd - result.elpd, rel=1e-6)
    assert 3 < result.p < 12
    assert np.asarray(result.elpd_i).shape == (120,)
    assert result.elpd == pytest.approx(float(np.sum(result.elpd_i)))
    assert synthetic_fit.loo().elpd == result.elpd


def test_fits_on_different_runs_are_refused(synthetic_fit, power_n_fit, pooling_fits):
    with pytest.raises(DataError, match="made on 188 runs and 'chinchilla' on 120"):
        compare_loo({"chinchilla": synthetic_fit, "grouped": pooling_fits["partial"]})
    with pytest.raises(SpecError, match="at least two fits"):
        compare_loo([synthetic_fit])
    with pytest.raises(SpecError, match="not a ScalingFit"):
        compare_loo({"a": synthetic_fit, "b": "fit.nc"})
    with pytest.raises(SpecError, match="unknown method"):
        compare_loo([synthetic_fit, power_n_fit], method="waic")


def test_refits_on_changed_runs_are_refused(synthetic_fit, power_n_fit):
    """Same number of runs but a different loss: the message names the first run that differs."""
    runs = simulate_chinchilla(n_runs=120)
    runs.loc[7, "loss"] *= 1.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        other = bs.ScalingModel("power_n").fit(runs, draws=100, tune=200, chains=2, random_seed=1)
    with pytest.raises(DataError, match="differ at run 7"):
        compare_loo([power_n_fit, other])


def test_duplicate_labels_are_numbered(synthetic_fit):
    table = compare_loo([synthetic_fit, synthetic_fit])
    assert sorted(table.index) == ["chinchilla #1", "chinchilla #2"]
    assert table["elpd_loo"].nunique() == 1
    assert describe_model(bs.ScalingModel.from_spec("chinchilla_mixtures")) == \
        "chinchilla_mixtures (E partial, A partial)"
