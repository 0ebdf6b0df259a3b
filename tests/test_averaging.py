"""Model-averaged decisions: weights, the mixture of the fits' draws, and every question asked of it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import simulate_chinchilla

import bayescale as bs
from bayescale.analysis.contract import interval
from bayescale.base.errors import DataError, SpecError

NEW = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}  # inside the runs, and 0.35 decades beyond in N


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.base.errors.ExtrapolationWarning)
        return func(*args, **kwargs)


def _numbers(frame):
    return frame[[c for c in frame.columns if frame[c].dtype.kind in "fb"]]


def test_stacking_weights_favour_the_true_law(synthetic_fit, power_n_fit):
    """Runs simulated from the Chinchilla form: stacking puts (nearly) all the weight on it."""
    avg = bs.average([synthetic_fit, power_n_fit])
    w = avg.weights
    assert list(w.index) == ["chinchilla", "power_n"] and w.attrs["method"] == "stacking"
    assert w["weight"].sum() == pytest.approx(1.0) and w.loc["chinchilla", "weight"] > 0.9
    assert w["draws"].sum() == 4000 and {"elpd_loo", "se", "elpd_diff", "dse"} <= set(w)
    text = str(avg)
    assert "stacking weights: chinchilla" in text and "avg.allocate(1e24)" in text
    bma = bs.average({"c": synthetic_fit, "p": power_n_fit}, weights="pseudo-BMA")
    assert bma.weights["weight"].sum() == pytest.approx(1.0) and bma.weights.loc["c", "weight"] > 0.9
    assert _quiet(avg.predict, NEW).attrs["interval"] == "stacked posterior ETI"


def test_prediction_is_the_pooled_draws(synthetic_fit, power_n_fit):
    """4000 + 2000 draws weighted 2:1 use every draw once: the table is the interval of the pooled draws."""
    fits = {"chinchilla": synthetic_fit, "power_n": power_n_fit}
    avg = bs.average(fits, weights={"chinchilla": 2, "power_n": 1}, draws=6000)
    assert avg.weights["draws"].tolist() == [4000, 2000]
    table = _quiet(avg.predict, NEW, prob=0.9)
    pooled = {q: np.concatenate([f.predict_draws(NEW)[q].values.reshape(-1, 2) for f in fits.values()])
              for q in ("expected_loss", "new_run_loss")}
    med, lo, hi = interval(pooled["expected_loss"], 0.9)
    np.testing.assert_allclose(table["loss_median"], med, rtol=1e-12)
    np.testing.assert_allclose(table["curve_lower"], lo, rtol=1e-12)
    np.testing.assert_allclose(table["curve_upper"], hi, rtol=1e-12)
    _, lo, hi = interval(pooled["new_run_loss"], 0.9)
    np.testing.assert_allclose(table[["new_run_lower", "new_run_upper"]].to_numpy(), np.c_[lo, hi], rtol=1e-12)
    # A mixture's quantiles lie between its components' (the two medians differ by 3% beyond the runs)
    one, other = (_quiet(f.predict, NEW, prob=0.9) for f in fits.values())
    for col in ("loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"):
        low, high = np.minimum(one[col], other[col]), np.maximum(one[col], other[col])
        assert np.all(low <= table[col]) and np.all(table[col] <= high), col
    assert table.attrs["interval"] == "weighted posterior ETI"


@pytest.mark.filterwarnings("ignore::bayescale.base.errors.ExtrapolationWarning")  # the same warnings, once from each
def test_all_weight_on_one_fit_reproduces_its_tables(synthetic_fit, synthetic_fit_known_form):
    """Weight {A: 1, B: 0}: every table is A's own, number for number (the same draws, the same seeds)."""
    fit = synthetic_fit
    avg = bs.average({"a": fit, "b": synthetic_fit_known_form}, weights={"a": 1.0, "b": 0.0})
    budgets = [1e21, 1e25]
    pairs = [
        (avg.predict(NEW), fit.predict(NEW)),
        (avg.allocate(budgets, max_unique_tokens=1e12), fit.allocate(budgets, max_unique_tokens=1e12)),
        (avg.risk(budgets, target=2.0, plan="1B:20B"), fit.risk(budgets, target=2.0, plan="1B:20B")),
        (avg.budget_for(1.95), fit.budget_for(1.95)),
        (avg.marginal_returns(budgets, cost_per_flop=1e-18), fit.marginal_returns(budgets, cost_per_flop=1e-18)),
    ]
    for mine, theirs in pairs:
        assert list(mine.columns) == list(theirs.columns)
        np.testing.assert_array_equal(_numbers(mine).to_numpy(), _numbers(theirs).to_numpy())
    assert pairs[1][0].attrs["interval"] == "weighted posterior ETI"
    assert avg.weights["draws"].tolist() == [4000, 0]


def test_mixture_probability_is_the_weighted_mean(synthetic_fit, synthetic_fit_known_form):
    """With every draw of both fits in the mixture, P(loss <= target) of a plan is the weighted mean of theirs."""
    a, b = synthetic_fit, synthetic_fit_known_form
    avg = bs.average({"a": a, "b": b}, weights=[0.5, 0.5], draws=8000)
    plans = ["30B:600B", "100B:5T"]
    mixed = _quiet(avg.risk, plan=plans, target=1.98)
    pa, pb = (_quiet(f.risk, plan=plans, target=1.98)["p_target"] for f in (a, b))
    np.testing.assert_allclose(mixed["p_target"], (pa + pb) / 2, rtol=1e-12)
    table = _quiet(avg.marginal_returns, [1e22, 1e25])
    assert table.attrs["interval"] == "weighted posterior ETI" and np.all(table["slope_median"] < 0)


@pytest.fixture(scope="module")
def a3_changed(chinchilla_runs):
    """Approach 3 on the Chinchilla runs with one loss changed: the same number of runs, not the same runs."""
    frame = pd.DataFrame(chinchilla_runs).copy()
    frame.loc[frame.index[7], "loss"] *= 1.01
    return bs.Approach3().fit(frame)


def test_fits_on_different_runs_are_refused(synthetic_fit, a3, a3_changed):
    with pytest.raises(DataError, match="made on 240 runs and 'chinchilla' on 120"):
        bs.average({"chinchilla": synthetic_fit, "a3": a3}, weights=[0.5, 0.5])
    with pytest.raises(DataError, match="differ at run 7"):
        bs.average({"a3": a3, "changed": a3_changed}, weights=[0.5, 0.5])


def test_bad_weights(synthetic_fit, synthetic_fit_known_form, a3):
    fits = {"a": synthetic_fit, "b": synthetic_fit_known_form}
    with pytest.raises(SpecError, match="unknown weights 'bma'; valid: 'stacking', 'pseudo-BMA', 'BB-pseudo-BMA'"):
        bs.average(fits, weights="bma")
    for bad, match in (({"a": 1.0}, "name every fit once"), ([1.0, -1.0], "non-negative"), ([0, 0], "not all zero"),
                       ([1.0, 2.0, 3.0], "one number per fit"), (["x", 1], "mapping or an array of numbers")):
        with pytest.raises(SpecError, match=match):
            bs.average(fits, weights=bad)
    with pytest.raises(SpecError, match="at least two fits"):
        bs.average([synthetic_fit])
    with pytest.raises(SpecError, match="not a ScalingFit"):  # LOO weights need posteriors
        bs.average({"a3": a3, "again": a3})
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        bs.average(fits, weights=[1, 1], draws=0)
    assert isinstance(pd.DataFrame(bs.average(fits, weights=[1, 3]).weights), pd.DataFrame)
