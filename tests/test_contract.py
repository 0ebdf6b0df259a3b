"""Every fit type answers the same questions: the results contract, run through every shared method."""

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.analysis.contract import SUMMARY_COLUMNS, ScalingResult, caption, interval, interval_label, two_bands
from bayescale.analysis.rendering import to_markdown

BUDGETS = [1e22, 1e23]
NEW = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}


@pytest.fixture(scope="module")
def a3_boot(a3):
    return a3.bootstrap(60, random_seed=1)


@pytest.fixture(scope="module", params=["posterior", "bootstrap", "point"])
def any_fit(request, chinchilla_fit, a3, a3_boot):
    return {"posterior": chinchilla_fit, "bootstrap": a3_boot, "point": a3}[request.param]


def test_every_fit_type_implements_the_contract(any_fit):
    assert isinstance(any_fit, ScalingResult)
    draws = any_fit.param_draws()
    assert set(any_fit.law.param_names) | {"sigma"} <= set(draws)
    shapes = {np.shape(v) for v in draws.values()}
    assert shapes == {any_fit.draw_shape}
    assert any_fit.hierarchical is False and isinstance(any_fit.converged, bool)
    lpd = any_fit.log_predictive_density(any_fit.runs.frame.head(5))
    assert np.all(np.isfinite(lpd))
    ll = any_fit.log_likelihood_draws(any_fit.runs.frame.head(5))  # draw by draw, the same likelihood
    assert ll.shape == (*any_fit.draw_shape, 5)
    flat = ll.reshape(-1, 5)
    assert np.allclose(np.logaddexp.reduce(flat, axis=0) - np.log(flat.shape[0]), lpd)


def test_summary_starts_with_the_common_columns(any_fit):
    for ci_kind in ("eti", "hdi"):
        table = any_fit.summary(0.8, ci_kind=ci_kind)
        assert tuple(table.columns[:4]) == SUMMARY_COLUMNS
        assert table.attrs["interval"] == interval_label(any_fit.draws_kind, ci_kind)
        if any_fit.draws_kind == "point":  # no parameter interval, and the table says why
            assert table[["sd", "lower", "upper"]].isna().all().all() and caption(table).startswith("point estimate")
        else:
            assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()


@pytest.mark.filterwarnings("ignore::bayescale.base.errors.ExtrapolationWarning")
def test_every_analysis_runs_on_every_fit(any_fit):
    kind = any_fit.draws_kind
    pred = any_fit.predict(NEW, prob=0.8)
    alloc = any_fit.allocate(BUDGETS, prob=0.8)
    alloc_capped = any_fit.allocate(BUDGETS, prob=0.8, max_unique_tokens=1e11)
    table = any_fit.risk(BUDGETS, target=2.3, plan="1B:20B", prob=0.8)
    need = any_fit.budget_for(2.3, prob=0.8)
    draws = any_fit.allocate_draws(BUDGETS)
    returns = any_fit.marginal_returns(BUDGETS, prob=0.8)
    for frame in (pred, alloc, alloc_capped, table, returns):
        assert frame.attrs["interval"] == interval_label(kind)
        assert f"{interval_label(kind)}" in caption(frame) or kind == "point"
        assert "converged" in frame or frame is pred
    # the same columns whatever the fit
    assert {"crossover_C_median", "crossover_C_lower", "crossover_C_upper", "data_bound_prob"} <= set(alloc_capped)
    assert (alloc["N_median"] * alloc["D_median"] * 6 / alloc["C"]).round(6).eq(1).all()
    assert draws["N"].dims == ("chain", "draw", "budget") and draws["N"].shape[:2] == any_fit.draw_shape
    assert np.isfinite(need["C"]).all()
    assert (table["new_run_lower"] <= table["curve_lower"]).all()
    assert 0 <= table["p_target"].min() and table["p_target"].max() <= 1
    if kind == "point":  # a point estimate: one curve, only run-to-run scatter in the new-run band
        assert (alloc["N_lower"] == alloc["N_upper"]).all()
        assert np.allclose(table["curve_lower"], table["curve_upper"])
        assert "point estimate" in to_markdown(table)
    else:
        assert (alloc["N_lower"] < alloc["N_upper"]).all()
    np.testing.assert_allclose(returns["loss_median"], alloc["loss_median"], rtol=1e-12)  # one frontier, one centre
    for figure in (any_fit.plot_frontier(BUDGETS), any_fit.plot_allocation(BUDGETS), any_fit.plot_isoflop(),
                   any_fit.plot_marginal_returns(BUDGETS)):
        assert figure.axes


def test_a_point_fit_reports_its_estimate_as_the_centre(a3_boot):
    alloc = a3_boot.allocate([5.88e23])
    point = bs.allocation.optimal_allocation(a3_boot.law, a3_boot.params, [5.88e23])
    assert alloc["N_median"].iloc[0] == pytest.approx(float(point["N"][0]), rel=1e-12)
    assert alloc["N_lower"].iloc[0] < alloc["N_median"].iloc[0] < alloc["N_upper"].iloc[0]


def test_risk_of_a_bootstrapped_fit_matches_its_predict_bands(a3_boot):
    """risk() of a plan and predict() at the same (N, D) agree on the curve band (same draws, same quantiles)."""
    with pytest.warns(bs.base.errors.ExtrapolationWarning):
        table = a3_boot.risk(plan=(7e10, 1.4e12), prob=0.9)
        pred = bs.analysis.predictive.predict(a3_boot, {"N": [7e10], "D": [1.4e12]}, 0.9)
    for col in ("curve_lower", "curve_upper"):
        assert table[col].iloc[0] == pytest.approx(pred[col].iloc[0], rel=1e-12)


def test_hdi_is_never_wider_than_the_equal_tailed_interval():
    rng = np.random.default_rng(0)
    skewed = rng.lognormal(0, 1, size=(20000, 3))
    _, lo_e, hi_e = interval(skewed, 0.9, "eti")
    _, lo_h, hi_h = interval(skewed, 0.9, "hdi")
    assert np.all(hi_h - lo_h <= hi_e - lo_e)
    with pytest.raises(ValueError, match="ci_kind must be one of 'eti', 'hdi', got 'hpd'"):
        interval(skewed, 0.9, "hpd")


def test_comparison_rows_come_from_the_contract(chinchilla_fit, a3, a3_boot):
    cmp = bs.compare({"bayes": chinchilla_fit, "a3": a3, "boot": a3_boot}, budget=[1e23], prob=0.8)
    assert cmp.methods["kind"].tolist() == ["posterior", "point", "bootstrap"]
    assert cmp.methods.loc["boot", "interval"].startswith("bootstrap percentile")
    est = cmp.params.xs("estimate", axis=1, level=1)
    assert est.loc["alpha", "a3"] == pytest.approx(a3.params["alpha"])
    with pytest.warns(DeprecationWarning, match="budgets= is now called budget="):
        bs.compare({"a3": a3}, budgets=[1e23])


def test_table_captions_name_their_interval_kind(a3_boot):
    with pytest.warns(bs.base.errors.ExtrapolationWarning):
        md = to_markdown(a3_boot.allocate([1e24], prob=0.9))
    assert "90% bootstrap percentile intervals" in md
    frame = pd.DataFrame({"C": [1.0], "N_lower": [1.0]})
    frame.attrs.update(prob=0.5, interval="posterior HDI")
    assert caption(frame) == "50% posterior HDI intervals"


def test_result_wrappers_take_every_argument_of_their_analysis():
    """A method of the shared read API passes every keyword its analysis function takes, with the same default."""
    import inspect
    import itertools

    from bayescale.analysis import nextrun, planning, predictive, returns, risk
    from bayescale.fitting.fit import ScalingFit
    from bayescale.fitting.pointfit import PointFit
    from bayescale.fitting.publishedlaw import PublishedLaw
    from bayescale.across.averaging import ModelAverage

    from bayescale.front.report import report

    assert not [p for p, v in inspect.signature(report).parameters.items()
                if v.default is not inspect.Parameter.empty and p not in inspect.signature(ScalingFit.report).parameters]
    pairs = {"predict": predictive.predict, "predict_draws": predictive.predict_draws, "allocate": planning.allocate,
             "allocate_draws": planning.allocate_draws, "risk": risk.risk, "budget_for": risk.budget_for,
             "marginal_returns": returns.marginal_returns, "recommend_runs": nextrun.recommend_runs}
    # every result class that answers these questions, not only the two fit types (a published law's loss-law
    # methods are generated from the shared ones; a model average writes its own)
    classes = (ScalingFit, PointFit, PublishedLaw, ModelAverage)
    assert all(hasattr(PublishedLaw, name) for name in pairs)
    for (name, func), cls in itertools.product(pairs.items(), classes):
        if not hasattr(cls, name):  # a model average has no draws to reweight or expand
            assert cls is ModelAverage and name in ("predict_draws", "allocate_draws", "recommend_runs"), name
            continue
        wrapper = inspect.signature(getattr(cls, name)).parameters
        analysis = inspect.signature(func).parameters
        # the data argument may be named for the method (new_runs for runs); every setting must match
        settings = [p for p, v in analysis.items() if v.default is not inspect.Parameter.empty]
        missing = [p for p in settings if p not in wrapper]
        assert not missing, f"{cls.__name__}.{name} lacks {missing}"
        for p in settings:
            assert wrapper[p].default == analysis[p].default, f"{cls.__name__}.{name}({p}=...) default differs"


def test_group_on_a_fit_without_groups_is_an_error_not_ignored(chinchilla_fit):
    import pandas as pd

    calls = {
        "predict": lambda: chinchilla_fit.predict({"N": [1e9], "D": [2e10]}, group="web"),
        "allocate": lambda: chinchilla_fit.allocate(1e21, group="web"),
        "risk": lambda: chinchilla_fit.risk(1e21, target=2.5, group="web"),
        "budget_for": lambda: chinchilla_fit.budget_for(2.5, group="web"),
        "marginal_returns": lambda: chinchilla_fit.marginal_returns(1e21, group="web"),
        "recommend_runs": lambda: chinchilla_fit.recommend_runs(pd.DataFrame({"N": [1e9], "D": [2e10]}),
                                                                budget=1e21, group="web"),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="group='web' applies to fits with groups"):
            call()


def test_two_bands_nest_even_where_noise_is_below_monte_carlo_error():
    """Noise 1e-4 of the curve's spread: the new-run quantiles alone land inside the curve band about half the time;
    the new-run band returned holds the curve band at every point, and equals its own quantiles where they are wider."""
    rng = np.random.default_rng(3)
    curve = rng.normal(size=(200, 500))
    new = curve + 1e-4 * rng.normal(size=curve.shape)
    _, lo, hi = interval(curve, 0.9)
    _, raw_lo, raw_hi = interval(new, 0.9)
    assert (raw_lo > lo).any() and (raw_hi < hi).any()  # what the guarantee is for
    med, lo2, hi2, nlo, nhi = two_bands(curve, new, 0.9)
    assert np.array_equal(lo2, lo) and np.array_equal(hi2, hi)
    assert np.all(nlo <= lo) and np.all(hi <= nhi)
    wide = rng.normal(size=(200, 500)) * 3
    assert np.array_equal(two_bands(curve, wide, 0.9)[3], interval(wide, 0.9)[1])
