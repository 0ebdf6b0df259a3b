import numpy as np
import pandas as pd
import pytest
from conftest import TRUE_CHINCHILLA, simulate_chinchilla

import bayescale as bs

BANDS = ["loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"]


def test_summary_table(chinchilla_fit):
    table = chinchilla_fit.summary(prob=0.8)
    assert list(table.index) == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    for col in ("estimate", "sd", "lower", "upper", "mean", "median", "r_hat", "ess_bulk", "ess_tail"):
        assert col in table
    assert (table["lower"] <= table["median"]).all() and (table["median"] <= table["upper"]).all()
    assert table.attrs["prob"] == 0.8
    wider = chinchilla_fit.summary(prob=0.95)
    assert (wider["upper"] - wider["lower"] > table["upper"] - table["lower"]).all()


def test_idata_groups(chinchilla_fit):
    tree = chinchilla_fit.idata
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"):
        assert group in tree.children
    assert set(tree["posterior"].data_vars) == set(chinchilla_fit.model.param_names)  # nothing internal
    ll = tree["log_likelihood"]["log_loss"]
    assert ll.dims == ("chain", "draw", "run") and ll.shape[-1] == 240
    assert np.isfinite(ll.values).all()


def test_predict_bands_are_nested(chinchilla_fit):
    new = pd.DataFrame({"N": [1e9, 70e9, 400e9], "D": [20e9, 1.4e12, 8e12]})
    pred = chinchilla_fit.predict(new, prob=0.9)
    assert list(pred.columns[-9:-4]) == BANDS
    assert list(pred.columns[-4:]) == ["beyond_C", "beyond_N", "beyond_D", "beyond"]
    assert (pred["new_run_lower"] <= pred["curve_lower"]).all()
    assert (pred["curve_lower"] <= pred["loss_median"]).all()
    assert (pred["loss_median"] <= pred["curve_upper"]).all()
    assert (pred["curve_upper"] <= pred["new_run_upper"]).all()
    # Bigger model on more data: lower loss; the band widens as we extrapolate further.
    assert pred["loss_median"].is_monotonic_decreasing
    width = pred["curve_upper"] - pred["curve_lower"]
    assert width.iloc[2] > width.iloc[0]
    assert pred.attrs["prob"] == 0.9


def test_predict_accepts_a_dict_and_derives_D_from_C(chinchilla_fit):
    by_d = chinchilla_fit.predict({"N": [70e9], "D": [1.4e12]})
    by_c = chinchilla_fit.predict({"N": [70e9], "C": [6 * 70e9 * 1.4e12]})
    np.testing.assert_allclose(by_c[BANDS].to_numpy(), by_d[BANDS].to_numpy(), rtol=1e-9)


def test_predict_names_missing_input(chinchilla_fit):
    with pytest.raises(bs.DataError, match="'D'"):
        chinchilla_fit.predict({"N": [1e9]})
    with pytest.raises(ValueError, match="prob"):
        chinchilla_fit.predict({"N": [1e9], "D": [2e10]}, prob=90)


def test_predict_keeps_observed_loss(chinchilla_fit, chinchilla_runs):
    pred = chinchilla_fit.predict(chinchilla_runs.head(5))
    np.testing.assert_array_equal(pred["observed_loss"], chinchilla_runs["loss"].head(5))


def test_new_run_band_covers_new_runs(synthetic_fit):
    """90% new-run bands on fresh runs from the true law cover about 90% of them.

    2000 runs: the binomial sd of the coverage is 0.7 points; parameter uncertainty is already in
    the band. +-4 points allows for the band's own Monte Carlo error and a posterior that is not
    centred on the truth.
    """
    fresh = simulate_chinchilla(n_runs=2000, sigma=0.01, seed=99)
    pred = synthetic_fit.predict(fresh[["N", "D"]], prob=0.9)
    inside = (fresh["loss"] >= pred["new_run_lower"]) & (fresh["loss"] <= pred["new_run_upper"])
    assert 0.86 <= inside.mean() <= 0.94, inside.mean()
    # The curve band alone ignores run-to-run noise, so it must cover clearly less.
    curve_inside = (fresh["loss"] >= pred["curve_lower"]) & (fresh["loss"] <= pred["curve_upper"])
    assert curve_inside.mean() < inside.mean() - 0.2


def test_curve_band_covers_the_true_curve(synthetic_fit):
    grid = simulate_chinchilla(n_runs=200, seed=7)[["N", "D"]]
    truth = bs.get_law("chinchilla").loss({"N": grid["N"].values, "D": grid["D"].values}, TRUE_CHINCHILLA)
    pred = synthetic_fit.predict(grid, prob=0.9)
    inside = (truth >= pred["curve_lower"]) & (truth <= pred["curve_upper"])
    # Pointwise bands on one posterior are correlated across the grid; require a clear majority.
    assert inside.mean() >= 0.7, inside.mean()


def test_predict_draws_dims(chinchilla_fit):
    draws = chinchilla_fit.predict_draws({"N": [1e9, 2e9], "D": [2e10, 4e10]})
    assert draws["expected_loss"].dims == ("chain", "draw", "run")
    assert draws["new_run_loss"].shape == (4, 1000, 2)


def test_reports(chinchilla_fit):
    text = repr(chinchilla_fit)
    assert "ScalingFit: chinchilla law" in text and "converged: yes" in text and "Next:" in text
    assert "<table" in chinchilla_fit._repr_html_()
    report = chinchilla_fit.fit_report()
    for section in ("[[Model]]", "[[Priors]]", "[[Data]]", "[[Sampler]]", "[[Parameters]]", "[[Form uncertainty]]",
                    "[[Diagnostics]]"):
        assert section in report


def test_diagnostics(chinchilla_fit):
    d = chinchilla_fit.diagnostics()
    assert d["converged"] is True
    assert d["max_tree_depth"] <= 5
    assert d["sampling_seconds"] > 0
