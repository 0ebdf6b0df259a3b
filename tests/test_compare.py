"""compare(): one parameter, prediction and allocation table with a column block per method, and a plot."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.across.compare import method_name
from bayescale.base.figure import Figure

NEW = {"N": [70e9, 1e9, 2.8e11], "D": [1.4e12, 2e10, 2.6e12], "loss": [1.95, 2.6, 1.93]}
BUDGETS = [1e21, 5.88e23]
STATS = ["estimate", "lower", "upper"]
PRED_STATS = ["loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"]


@pytest.fixture(scope="module")
def point_fits(chinchilla_runs):
    a3 = bs.Approach3().fit(chinchilla_runs).bootstrap(100, random_seed=7)
    ls = bs.LeastSquares().fit(chinchilla_runs)
    iso = bs.IsoFLOP(levels=[6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]).fit(chinchilla_runs)
    return a3, ls, iso


@pytest.fixture(scope="module")
def comparison(point_fits, chinchilla_fit):
    a3, ls, iso = point_fits
    fits = {"Approach 3": a3, "LS": ls, "Bayes": chinchilla_fit, "isoFLOP": iso}
    return bs.compare(fits, new_runs=NEW, budget=BUDGETS, prob=0.8)


def test_parameter_table_has_one_block_per_method(comparison, point_fits, chinchilla_fit):
    a3, ls, iso = point_fits
    params = comparison.params
    assert params.columns.names == ["method", "stat"]
    assert params.columns.get_level_values(0).unique().tolist() == ["Approach 3", "LS", "Bayes", "isoFLOP"]
    for method in ("Approach 3", "LS", "Bayes", "isoFLOP"):
        assert params[method].columns.tolist() == STATS
    # Point estimates are the fits' own; their 80% intervals are the bootstrap percentiles.
    summary = a3.summary(0.8)
    for name in ("E", "A", "B", "alpha", "beta", "sigma"):
        assert params.loc[name, ("Approach 3", "estimate")] == summary.loc[name, "estimate"]
        assert params.loc[name, ("Approach 3", "lower")] == summary.loc[name, "lower"]
        assert params.loc[name, ("Approach 3", "upper")] == summary.loc[name, "upper"]
        assert params.loc[name, ("LS", "estimate")] == pytest.approx(ls.summary().loc[name, "estimate"])
    # A point fit without bootstrap has no interval.
    assert params["LS"][["lower", "upper"]].isna().all().all()
    # Bayesian: posterior median and the central 80% interval of the draws.
    alpha = chinchilla_fit.posterior["alpha"].values.ravel()
    assert params.loc["alpha", ("Bayes", "estimate")] == pytest.approx(np.median(alpha))
    assert params.loc["alpha", ("Bayes", "lower")] == pytest.approx(np.quantile(alpha, 0.1))
    assert params.loc["alpha", ("Bayes", "upper")] == pytest.approx(np.quantile(alpha, 0.9))
    assert params.loc["nu", ("Approach 3", "estimate")] != params.loc["nu", ("Approach 3", "estimate")]  # NaN
    # isoFLOP contributes its exponents, others do not have them.
    assert params.loc["a", ("isoFLOP", "estimate")] == pytest.approx(iso.a)
    assert np.isnan(params.loc["a", ("Bayes", "estimate")])
    assert "Approach 3" in repr(comparison) and "80% intervals" in repr(comparison)


def test_predictions_are_each_fits_own_predict(comparison, point_fits, chinchilla_fit):
    a3, ls, _ = point_fits
    pred = comparison.predictions
    # isoFLOP fits do not predict losses: no block; observed losses go in a "data" block.
    assert pred.columns.get_level_values(0).unique().tolist() == ["Approach 3", "LS", "Bayes", "data"]
    assert pred.index.names == ["N", "D", "C"]
    np.testing.assert_allclose(pred.index.get_level_values("C"), 6 * np.array(NEW["N"]) * np.array(NEW["D"]))
    np.testing.assert_array_equal(pred[("data", "observed_loss")], NEW["loss"])
    for name, fit in (("Approach 3", a3), ("LS", ls), ("Bayes", chinchilla_fit)):
        own = fit.predict(NEW, prob=0.8)
        assert pred[name].columns.tolist() == PRED_STATS
        for col in PRED_STATS:
            np.testing.assert_allclose(pred[(name, col)].to_numpy(), own[col].to_numpy(), rtol=1e-12,
                                       err_msg=f"{name} {col}")
    # And the bands are real where they should be: bootstrap and posterior have curve bands.
    for name in ("Approach 3", "Bayes"):
        assert (pred[(name, "curve_upper")] > pred[(name, "curve_lower")]).all()


def test_allocations_are_each_fits_own_allocate(comparison, point_fits, chinchilla_fit):
    a3, ls, iso = point_fits
    alloc = comparison.allocations
    assert alloc.index.name == "C"
    np.testing.assert_allclose(alloc.index.to_numpy(), BUDGETS)
    assert alloc.columns.get_level_values(0).unique().tolist() == ["Approach 3", "LS", "Bayes", "isoFLOP"]
    for name, fit in (("Approach 3", a3), ("LS", ls), ("Bayes", chinchilla_fit), ("isoFLOP", iso)):
        own = fit.allocate(BUDGETS, prob=0.8)
        for col in ("N_median", "N_lower", "N_upper", "tokens_per_param_median", "loss_median"):
            if name == "isoFLOP" and col == "loss_median":  # Approach 2 has no loss model, and no NaN column for it
                assert col not in own and (name, col) not in alloc.columns
                continue
            np.testing.assert_allclose(alloc[(name, col)].to_numpy(), own[col].to_numpy(), rtol=1e-12,
                                       err_msg=f"{name} {col}")
        assert alloc[(name, "converged")].tolist() == own["converged"].tolist()


def test_methods_table_says_what_each_interval_is(comparison, chinchilla_fit):
    table = comparison.methods
    assert table.index.tolist() == ["Approach 3", "LS", "Bayes", "isoFLOP"]
    assert table.loc["Bayes", "converged"] == chinchilla_fit.converged
    assert table.loc["LS", "n_runs"] == 240
    assert "posterior" in table.loc["Bayes", "interval"]
    assert "bootstrap" in table.loc["Approach 3", "interval"]
    assert "none" in table.loc["LS", "interval"]


def test_plot_overlays_every_method_with_labels(comparison):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = comparison.plot()
    try:
        assert isinstance(fig, Figure) and fig._repr_png_()[:4] == b"\x89PNG"
        assert plt.get_fignums() == before  # not a pyplot figure: a notebook shows it once, as the value
        pred_ax, alloc_ax, param_ax = fig.axes
        assert pred_ax.get_ylabel() == "loss" and "compute" in pred_ax.get_xlabel()
        assert alloc_ax.get_ylabel() == "compute-optimal N"
        labels = pred_ax.get_legend_handles_labels()[1]
        assert {"Approach 3", "LS", "Bayes", "observed", "training runs"} <= set(labels)
        assert "isoFLOP" in alloc_ax.get_legend_handles_labels()[1]
        assert set(param_ax.get_legend_handles_labels()[1]) == {"Approach 3", "LS", "Bayes", "isoFLOP"}
        assert "alpha" in [t.get_text() for t in param_ax.get_yticklabels()]
    finally:
        plt.close(fig)
    fig = comparison.plot(x="N")
    try:
        assert fig.axes[0].get_xlabel() == "parameters N"
    finally:
        plt.close(fig)
    with pytest.raises(bs.SpecError, match="x='U' is not a column of the new runs"):
        comparison.plot(x="U")


def test_list_of_fits_gets_distinct_default_names(point_fits, chinchilla_runs):
    a3, ls, _ = point_fits
    cmp = bs.compare([a3, ls, ls])
    assert list(cmp.fits) == ["Approach 3 + bootstrap", "least squares (log_loss)", "least squares (log_loss) (2)"]
    assert cmp.predictions is None and cmp.allocations is None
    assert method_name(bs.Approach3().fit(chinchilla_runs)) == "Approach 3"


def test_bad_input_is_named(point_fits):
    a3, _, _ = point_fits
    with pytest.raises(bs.SpecError, match=r"method name\(s\) \['data'\] are reserved"):
        bs.compare({"data": a3})
    with pytest.raises(ValueError, match="compare\\(\\) needs at least one fit"):
        bs.compare([])
    with pytest.raises(TypeError, match="fits must be a dict name -> fit or a list of fits, got PointFit"):
        bs.compare(a3)
    with pytest.raises(ValueError, match="prob must be a number strictly between 0 and 1, got 1.5"):
        bs.compare([a3], prob=1.5)
    with pytest.raises(bs.DataError, match="'D'"):
        bs.compare([a3], new_runs=pd.DataFrame({"N": [1e9]}))


def test_per_group_parameters_get_one_row_per_group():
    # A fit with groups has draws with a group dimension: each group is its own row, as in
    # ScalingFit.summary ("E[a]"), never pooled across groups.
    import xarray as xr

    from bayescale.across.compare import _param_rows

    class Grouped(bs.ScalingFit):
        def __init__(self):
            pass

        posterior = xr.Dataset(
            {"E": (("chain", "draw", "group"), np.stack([np.full((2, 50), 1.5), np.full((2, 50), 2.5)], axis=-1)),
             "alpha": (("chain", "draw"), np.linspace(0.0, 1.0, 100).reshape(2, 50))},
            coords={"group": ["a", "b"]})

    rows = _param_rows(Grouped(), 0.9)
    assert rows.index.tolist() == ["E[a]", "E[b]", "alpha"]
    assert rows.loc["E[a]", "estimate"] == 1.5 and rows.loc["E[b]", "upper"] == 2.5
    assert rows.loc["alpha", "lower"] == pytest.approx(0.05) and rows.loc["alpha", "upper"] == pytest.approx(0.95)
