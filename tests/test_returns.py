"""Marginal returns of compute: slope, gain per doubling, compute for the next 0.01, against allocate and the law."""

import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.base.figure import Figure
from bayescale.analysis.returns import marginal_draws

BUDGETS = [1e20, 1e22, 1e24]


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.base.errors.ExtrapolationWarning)
        return func(*args, **kwargs)


def _flat(ds, name):
    return ds[name].values.reshape(-1, ds.sizes["budget"])


def test_slope_is_the_chinchilla_derivative(synthetic_fit_known_form):
    """Without form uncertainty the frontier is E + K (C/k)^-g, so d L / d log10 C = -g ln 10 (L - E) per draw."""
    fit = synthetic_fit_known_form
    ds = _quiet(marginal_draws, fit, BUDGETS)
    p = fit.param_draws()
    g = (p["alpha"] * p["beta"] / (p["alpha"] + p["beta"])).reshape(-1, 1)
    analytic = -g * np.log(10) * (_flat(ds, "loss") - p["E"].reshape(-1, 1))
    # central difference of half-width 1e-3 decades: truncation error ~ (g ln10 * 1e-3)^2 / 6, below 1e-7 relative
    np.testing.assert_allclose(_flat(ds, "slope"), analytic, rtol=1e-6)
    # and one doubling gains (L - E)(1 - 2^-g), also exact
    np.testing.assert_allclose(_flat(ds, "gain_doubling"),
                               (_flat(ds, "loss") - p["E"].reshape(-1, 1)) * (1 - 2.0 ** -g), rtol=1e-9)


def test_draws_follow_allocate_draws_with_form_uncertainty(synthetic_fit):
    """Per draw, the slope and the doubling gain are differences of allocate_draws' loss (form shift included)."""
    fit = synthetic_fit
    budgets = np.array([1e20, 1e23, 1e26])  # the runs reach ~1e24 FLOP: the last is 2 decades beyond
    h = 1e-3
    ds = _quiet(marginal_draws, fit, budgets)
    alloc = _quiet(fit.allocate_draws, np.concatenate([budgets, budgets / 10**h, budgets * 10**h, 2 * budgets]))
    loss = alloc["loss"].values.reshape(-1, 4 * budgets.size)
    at, below, above, doubled = np.split(loss, 4, axis=1)
    np.testing.assert_allclose(_flat(ds, "loss"), at, rtol=1e-12)
    np.testing.assert_allclose(_flat(ds, "slope"), (above - below) / (2 * h), rtol=1e-9)
    np.testing.assert_allclose(_flat(ds, "gain_doubling"), at - doubled, rtol=1e-9)
    slope = _flat(ds, "slope")
    assert np.all(slope[:, 0] < 0)  # well inside the runs every draw's loss falls with compute
    # Where a draw's optimum leaves the fitted range (some at 1e23, more 2 decades out) its form discrepancy can
    # outrun the law's exponent (bayescale.core.form): 0.9% and 10% of the draws here
    assert (slope[:, 1] < 0).mean() > 0.97 and (slope[:, 2] < 0).mean() > 0.8


def test_table_matches_finite_differences_of_allocate(synthetic_fit, synthetic_fit_known_form):
    """The table's slope is the median over draws of allocate_draws' central difference, its loss allocate's.

    Compared like with like, so the check is exact (float rounding only) on any machine: the median of the
    draws' slopes is not the slope of the draws' median loss, and the gap between the two depends on the
    posterior draws (2.06% at 1e26 on one machine, under 2% on another), so it is no basis for a tolerance.
    """
    h = 1e-3  # decades: the half-width marginal_returns uses
    for fit, budgets in ((synthetic_fit_known_form, np.array([1e20, 1e23, 1e26])),
                         (synthetic_fit, np.array([1e20, 1e22]))):
        table = _quiet(fit.marginal_returns, budgets)
        alloc = _quiet(fit.allocate_draws, np.concatenate([budgets / 10**h, budgets * 10**h]))
        below, above = np.split(alloc["loss"].values.reshape(-1, 2 * budgets.size), 2, axis=1)
        np.testing.assert_allclose(table["slope_median"], np.median((above - below) / (2 * h), axis=0), rtol=1e-9)
        np.testing.assert_allclose(table["loss_median"], _quiet(fit.allocate, budgets)["loss_median"], rtol=1e-12)
    table = _quiet(synthetic_fit.marginal_returns, [1e20, 1e26])
    assert np.all(table["slope_lower"] < table["slope_median"]) and np.all(table["slope_median"] < table["slope_upper"])
    assert table.attrs["interval"] == "posterior ETI" and table.attrs["loss_step"] == 0.01
    assert table["converged"].dtype == bool and "beyond" in table
    assert table["beyond_C"].iloc[-1] > 1 and table["beyond_C"].iloc[0] == 0


def test_next_step_satisfies_its_equation(synthetic_fit):
    """At C_next the draw's frontier loss is L(C) - 0.01, and 1% less compute does not get there yet."""
    fit = synthetic_fit
    ds = _quiet(marginal_draws, fit, [1e21, 1e26])
    rng = np.random.default_rng(0)
    loss, c_next = _flat(ds, "loss"), _flat(ds, "C_next")
    finite = np.all(np.isfinite(c_next), axis=1)
    # a draw that never gets there has not got there at the end of the search either
    end = _quiet(fit.allocate_draws, 1e40)["loss"].values.ravel()
    assert np.all(end[~finite] > loss[~finite, 1] - 0.01)
    assert finite.mean() > 0.8 and np.all(c_next[finite] > ds["budget"].values)
    picks = rng.choice(np.flatnonzero(finite), 12, replace=False)
    for b in range(2):
        alloc = _quiet(fit.allocate_draws, np.concatenate([c_next[picks, b], 0.99 * c_next[picks, b]]))
        reached = alloc["loss"].values.reshape(-1, 2 * picks.size)
        goal = loss[picks, b] - 0.01
        # Beyond the fitted runs log(L - E) bends where a draw's distance from the runs changes slope: the
        # interpolation inside a 0.1-decade step then misses by far less than 1e-4 of loss.
        np.testing.assert_allclose(reached[picks, np.arange(picks.size)], goal, atol=1e-4)
        assert np.all(reached[picks, picks.size + np.arange(picks.size)] > goal)


def test_next_step_is_inf_where_the_floor_is_near(synthetic_fit_known_form):
    """Draws within 0.01 of their irreducible loss never gain 0.01: inf, counted by never_prob."""
    fit = synthetic_fit_known_form
    budget = 1e30
    ds = _quiet(marginal_draws, fit, budget)
    e = fit.param_draws()["E"].ravel()
    gap = _flat(ds, "loss")[:, 0] - e
    c_next = _flat(ds, "C_next")[:, 0]
    near = gap <= 0.01
    assert 0.05 < near.mean() < 0.95  # the budget puts the floor within reach of some draws, not all
    assert np.all(np.isposinf(c_next[near]))
    table = _quiet(fit.marginal_returns, budget)
    never = np.isposinf(c_next).mean()
    assert table["never_prob"].iloc[0] == pytest.approx(never) and never >= near.mean()
    assert table["C_next_upper"].iloc[0] == np.inf
    finite = np.sort(c_next[np.isfinite(c_next)])
    if never < 0.05:  # the lower bound lies among finite draws
        assert np.isfinite(table["C_next_lower"].iloc[0])
    assert table["C_next_median"].iloc[0] == (np.inf if never > 0.5 else pytest.approx(np.median(c_next)))
    assert finite.size == 0 or np.all(finite > budget)
    # no compute at all beyond the budget: nothing gains the step
    capped = _quiet(fit.marginal_returns, 1e22, max_compute=1.001e22)
    assert capped["never_prob"].iloc[0] == 1.0 and capped["C_next_median"].iloc[0] == np.inf


def test_point_fit_and_money_columns(a3):
    """A point estimate: every band is its value, the median its plan; money columns are price times compute."""
    price = 2e-18
    t = _quiet(a3.marginal_returns, BUDGETS, cost_per_flop=price)
    assert t.attrs["interval"] == "point estimate"
    np.testing.assert_allclose(t["slope_lower"], t["slope_upper"], rtol=1e-12)
    p = a3.point_params
    g = p["alpha"] * p["beta"] / (p["alpha"] + p["beta"])
    np.testing.assert_allclose(t["slope_median"], -g * np.log(10) * (t["loss_median"] - p["E"]), rtol=1e-6)
    np.testing.assert_allclose(t["cost_doubling"], price * np.array(BUDGETS), rtol=1e-12)
    np.testing.assert_allclose(t["cost_next_median"], price * (t["C_next_median"] - t["C"]), rtol=1e-9)
    # Chinchilla: L(C') - E = (L - E) (C'/C)^-g, so C' = C ((L - E) / (L - E - 0.01))^(1/g) exactly
    gap = t["loss_median"] - p["E"]
    np.testing.assert_allclose(t["C_next_median"], t["C"] * (gap / (gap - 0.01)) ** (1 / g), rtol=1e-6)
    assert t.attrs["cost_per_flop"] == price


def test_hdi_and_loss_step(synthetic_fit_known_form):
    t = _quiet(synthetic_fit_known_form.marginal_returns, 1e22, ci_kind="hdi", loss_step=0.02, prob=0.5)
    assert t.attrs["interval"] == "posterior HDI" and t.attrs["loss_step"] == 0.02 and t.attrs["prob"] == 0.5
    one = _quiet(synthetic_fit_known_form.marginal_returns, 1e22)
    assert t["C_next_median"].iloc[0] > one["C_next_median"].iloc[0]  # twice the gain needs more compute


@pytest.mark.parametrize("kwargs, match", [
    (dict(budget=-1.0), "budget must be positive"),
    (dict(budget=1e22, prob=1.5), "prob"),
    (dict(budget=1e22, ci_kind="wide"), "ci_kind must be one of"),
    (dict(budget=1e22, cost_per_flop=0.0), "cost_per_flop must be positive"),
    (dict(budget=1e22, cost_per_flop=[1e-18, 2e-18]), "cost_per_flop must be one positive number"),
    (dict(budget=1e22, loss_step=-0.01), "loss_step must be positive"),
    (dict(budget=1e22, flops_per_param_token=0), "flops_per_param_token must be positive"),
])
def test_bad_inputs(a3, kwargs, match):
    with pytest.raises(ValueError, match=match):
        a3.marginal_returns(**kwargs)


def test_plot_marginal_returns(a3):
    fig = a3.plot_marginal_returns([1e24])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "log10 C" in ax.get_ylabel()
    median = ax.get_lines()[0].get_ydata()
    assert np.all(np.asarray(median) < 0)
