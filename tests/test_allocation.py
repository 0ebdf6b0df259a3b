"""Compute-optimal allocation: array layer (any parameter draws) and ScalingFit.allocate."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayescale as bs
from bayescale.core.allocation import chinchilla_optimum, crossover_compute, optimal_allocation
from bayescale.analysis.planning import allocate

BUDGETS = np.logspace(18, 28, 11)
# With a 1e12-token cap, budgets past ~1e26 need hundreds of epochs, where the data-constrained law is
# flat in N (both effective counts saturate) and has no interior optimum; stay below that.
MODERATE = np.logspace(18, 25, 8)


def chinchilla_draws(n=200, seed=0):
    """Parameter draws spread like the posterior of the 240 Chinchilla runs (wider, to exercise the optimiser)."""
    rng = np.random.default_rng(seed)
    return dict(E=rng.uniform(1.7, 1.9, n), A=np.exp(rng.normal(np.log(482), 0.3, n)),
                B=np.exp(rng.normal(np.log(2085), 0.6, n)), alpha=rng.uniform(0.3, 0.4, n),
                beta=rng.uniform(0.3, 0.42, n))


def dc_draws(n=50, seed=1):
    p = chinchilla_draws(n, seed)
    p.update(R_D=np.full(n, 15.39), R_N=np.full(n, 5.31))
    return p


# ------------------------------------------------------------------ array layer
def test_numerical_agrees_with_closed_form_on_chinchilla():
    p = chinchilla_draws()
    closed = optimal_allocation("chinchilla", p, BUDGETS)
    num = optimal_allocation("chinchilla", p, BUDGETS, method="numerical")
    assert closed["N"].shape == num["N"].shape == (200, 11)
    # The issue asks for 1e-4 relative; golden-section refines log N to ~1e-8.
    np.testing.assert_allclose(num["N"], closed["N"], rtol=1e-4)
    np.testing.assert_allclose(num["D"], closed["D"], rtol=1e-4)
    np.testing.assert_allclose(num["loss"], closed["loss"], rtol=1e-10)


def test_closed_form_matches_chinchilla_optimum_and_is_a_minimum():
    p = chinchilla_draws(20)
    out = optimal_allocation("chinchilla", p, 5.88e23)
    n, d = chinchilla_optimum(p, 5.88e23)
    np.testing.assert_allclose(out["N"], n, rtol=1e-12)
    law = bs.get_law("chinchilla")
    for f in (0.98, 1.02):  # moving N by 2% at fixed compute must cost loss
        other = law.loss({"N": out["N"] * f, "D": out["D"] / f}, p)
        assert np.all(other > out["loss"])


@pytest.mark.parametrize("law", ["chinchilla", "kaplan", "data_constrained"])
def test_allocations_respect_the_compute_budget(law):
    p = dc_draws() if law == "data_constrained" else (
        chinchilla_draws(50) if law == "chinchilla" else
        dict(N_c=np.full(50, 8.8e13), D_c=np.full(50, 5.4e13), alpha_N=np.linspace(0.07, 0.08, 50),
             alpha_D=np.full(50, 0.095)))
    for k in (6.0, 8.0):
        for cap in (None, 1e12):
            out = optimal_allocation(law, p, MODERATE, flops_per_param_token=k, max_unique_tokens=cap)
            np.testing.assert_allclose(k * out["N"] * out["D"], np.broadcast_to(MODERATE, (50, 8)), rtol=1e-9)


def test_layout_is_params_shape_then_budget_shape():
    p = chinchilla_draws(12)
    assert optimal_allocation("chinchilla", p, 1e24)["N"].shape == (12,)
    assert optimal_allocation("chinchilla", p, [1e23, 1e24, 1e25])["N"].shape == (12, 3)
    p2 = {k: v.reshape(3, 4) for k, v in p.items()}
    out = optimal_allocation("chinchilla", p2, [1e23, 1e24])
    assert out["N"].shape == (3, 4, 2)
    np.testing.assert_allclose(out["N"][1, 2, 1], optimal_allocation("chinchilla", p, 1e24)["N"][6])
    scalar = {k: float(v[0]) for k, v in p.items()}
    assert optimal_allocation("chinchilla", scalar, 1e24)["N"].shape == ()


def test_numerical_optimum_of_kaplan_matches_its_closed_form():
    # L = ((N_c/N)^(aN/aD) + D_c k N / C)^aD is minimised where d/dN of the bracket vanishes:
    # N* = (r x / y)^(1/(r+1)), r = aN/aD, x = N_c^r, y = D_c k / C.
    p = dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095)
    out = optimal_allocation("kaplan", p, BUDGETS)
    r = p["alpha_N"] / p["alpha_D"]
    expected = (r * p["N_c"] ** r / (p["D_c"] * 6.0 / BUDGETS)) ** (1 / (r + 1))
    np.testing.assert_allclose(out["N"], expected, rtol=1e-4)


def test_data_constrained_without_cap_reduces_to_chinchilla():
    # With fresh data only (U = D) the excess-parameter penalty vanishes exactly at the Chinchilla
    # optimum and only raises the loss elsewhere, so both laws share the optimum.
    p = dc_draws()
    dc = optimal_allocation("data_constrained", p, BUDGETS)
    ch = optimal_allocation("chinchilla", p, BUDGETS)
    np.testing.assert_allclose(dc["N"], ch["N"], rtol=1e-4)
    np.testing.assert_allclose(dc["loss"], ch["loss"], rtol=1e-9)
    assert np.all(dc["epochs"] == 1.0) and not dc["data_bound"].any()


def test_data_cap_without_repetition_term_caps_tokens():
    p = chinchilla_draws(50)
    cap = 1e12
    free = optimal_allocation("chinchilla", p, BUDGETS)
    capped = optimal_allocation("chinchilla", p, BUDGETS, max_unique_tokens=cap)
    bound = free["D"] > cap
    assert bound.any() and (~bound).any()
    np.testing.assert_array_equal(capped["data_bound"], bound)
    np.testing.assert_allclose(capped["D"][bound], cap, rtol=1e-12)
    np.testing.assert_allclose(capped["N"][bound], (BUDGETS / 6 / cap * np.ones_like(free["N"]))[bound])
    np.testing.assert_allclose(capped["N"][~bound], free["N"][~bound], rtol=1e-12)
    assert np.all(capped["loss"][bound] > free["loss"][bound])


def test_data_cap_with_repetition_is_between_fresh_and_capped_plans():
    p = dc_draws()
    cap = 1e12
    law = bs.get_law("data_constrained")
    free = optimal_allocation(law, p, MODERATE)
    rep = optimal_allocation(law, p, MODERATE, max_unique_tokens=cap)
    assert np.all(rep["U"] <= cap * (1 + 1e-12))
    bound = rep["data_bound"]
    assert bound.any()
    # Repeating data helps: trains on more than U tokens, more than one epoch.
    assert np.all(rep["epochs"][bound] > 1.0) and np.all(rep["D"][bound] > cap)
    # No better than unlimited fresh data; no worse than stopping at one epoch of U.
    assert np.all(rep["loss"] >= free["loss"] * (1 - 1e-12))
    one_epoch_n = MODERATE / 6 / cap
    one_epoch = law.loss({"N": one_epoch_n, "D": np.full(MODERATE.shape, cap), "U": cap},
                         {k: v[:, None] for k, v in p.items()})
    assert np.all(rep["loss"][bound] <= one_epoch[bound] * (1 + 1e-12))


def test_crossover_compute_closed_form_and_bisection_agree():
    p = dc_draws(20)
    caps = np.array([1e11, 1e12, 1e13])
    closed = crossover_compute("chinchilla", p, caps)
    assert closed.shape == (20, 3)
    # At the crossover the optimal plan uses exactly U tokens.
    d = optimal_allocation("chinchilla", {k: v[:, None] for k, v in p.items()}, closed)["D"]
    # (params (20,1) broadcast against budgets (20,3) -> (20,1,20,3); take the matched diagonal)
    d = d[np.arange(20), 0, np.arange(20), :]
    np.testing.assert_allclose(d, np.broadcast_to(caps, (20, 3)), rtol=1e-9)
    numeric = crossover_compute("data_constrained", p, caps)
    np.testing.assert_allclose(numeric, closed, rtol=1e-3)


def test_bad_inputs_raise_clear_errors():
    p = chinchilla_draws(3)
    with pytest.raises(bs.SpecError, match="N and D"):
        optimal_allocation("power_c", dict(E=1.0, K=1.0, gamma=0.1), 1e24)
    with pytest.raises(ValueError, match="budget must be positive"):
        optimal_allocation("chinchilla", p, [1e24, -1.0])
    with pytest.raises(ValueError, match="max_unique_tokens"):
        optimal_allocation("chinchilla", p, 1e24, max_unique_tokens=0)
    with pytest.raises(bs.SpecError, match="beta"):
        optimal_allocation("chinchilla", {k: v for k, v in p.items() if k != "beta"}, 1e24)
    with pytest.raises(bs.SpecError, match="no closed-form"):
        optimal_allocation("kaplan", dict(N_c=1.0, D_c=1.0, alpha_N=0.1, alpha_D=0.1), 1e24,
                           method="closed_form")


# ------------------------------------------------------------------ ScalingFit layer
def test_chinchilla_tokens_per_parameter_at_the_chinchilla_budget(chinchilla_fit):
    # Published check: the replication's refit implies ~20 tokens per parameter at C = 5.88e23
    # (Besiroglu et al. 2024); the posterior median must lie in [15, 30].
    table = chinchilla_fit.allocate(5.88e23, prob=0.9)
    row = table.iloc[0]
    print(f"\ntokens per parameter at 5.88e23 FLOP: median {row.tokens_per_param_median:.1f}, "
          f"90% interval [{row.tokens_per_param_lower:.1f}, {row.tokens_per_param_upper:.1f}]")
    assert 15 <= row.tokens_per_param_median <= 30
    assert row.tokens_per_param_lower < row.tokens_per_param_median < row.tokens_per_param_upper
    # The interval is a real posterior spread, not a point: at least +-10% around the median.
    assert row.tokens_per_param_upper / row.tokens_per_param_lower > 1.2


def test_allocate_table_layout(chinchilla_fit):
    budgets = [1e23, 1e24, 1e25]
    table = chinchilla_fit.allocate(budgets, prob=0.8)
    assert list(table["C"]) == budgets
    for name in ("N", "D", "tokens_per_param", "loss"):
        assert np.all(table[f"{name}_lower"] < table[f"{name}_median"])
        assert np.all(table[f"{name}_median"] < table[f"{name}_upper"])
    assert table.attrs["prob"] == 0.8
    assert table["converged"].tolist() == [chinchilla_fit.diagnostics()["converged"]] * 3
    # Larger budgets: larger models, more tokens, lower loss.
    assert np.all(np.diff(table["N_median"]) > 0) and np.all(np.diff(table["loss_median"]) < 0)
    # Narrower probability gives narrower intervals.
    wide = chinchilla_fit.allocate(budgets, prob=0.95)
    assert np.all(wide["N_upper"] - wide["N_lower"] > table["N_upper"] - table["N_lower"])


def test_allocate_draws_respect_the_budget_and_match_the_table(chinchilla_fit):
    budgets = np.array([1e22, 5.88e23, 1e26])
    ds = chinchilla_fit.allocate_draws(budgets)
    assert ds["N"].dims == ("chain", "draw", "budget")
    assert ds.sizes["chain"] * ds.sizes["draw"] == chinchilla_fit.posterior.sizes["chain"] * \
        chinchilla_fit.posterior.sizes["draw"]
    np.testing.assert_allclose(6 * ds["N"] * ds["D"], np.broadcast_to(budgets, ds["N"].shape), rtol=1e-9)
    table = chinchilla_fit.allocate(budgets)
    # The table's plan: N at the median of log N_opt, D = C / (6 N); the intervals are the draws' quantiles.
    log_n = np.log(ds["N"].stack(sample=("chain", "draw")).values)
    np.testing.assert_allclose(table["N_median"], np.exp(np.median(log_n, axis=-1)), rtol=1e-12)
    np.testing.assert_allclose(table["D_median"], budgets / (6 * table["N_median"]), rtol=1e-12)
    log_d = np.log(ds["D"].stack(sample=("chain", "draw")).values)
    np.testing.assert_allclose(table["D_lower"], np.exp(np.quantile(log_d, 0.05, axis=-1)), rtol=1e-12)
    np.testing.assert_allclose(table["D_lower"], budgets / (6 * table["N_upper"]), rtol=1e-12)
    k8 = chinchilla_fit.allocate_draws(budgets, flops_per_param_token=8.0)
    np.testing.assert_allclose(8 * k8["N"] * k8["D"], np.broadcast_to(budgets, k8["N"].shape), rtol=1e-9)


def test_allocation_recovers_the_true_optimum_of_synthetic_runs(synthetic_fit):
    # The synthetic runs follow TRUE_CHINCHILLA exactly (1% noise): the posterior 90% interval of the
    # optimal N at a budget 10x beyond the runs should contain the true optimum (fixed seeds, so
    # this is deterministic; a wrong optimiser or a mixed-up exponent would miss by far more).
    from conftest import TRUE_CHINCHILLA

    budget = 6 * 10**10.5 * 10**12.8 * 10
    table = synthetic_fit.allocate(budget, prob=0.9)
    n_true, d_true = chinchilla_optimum(TRUE_CHINCHILLA, budget)
    assert table["N_lower"][0] <= n_true <= table["N_upper"][0]
    assert table["D_lower"][0] <= d_true <= table["D_upper"][0]


def test_allocate_with_a_data_cap_reports_the_crossover(chinchilla_fit):
    cap = 2e12
    table = chinchilla_fit.allocate([1e23, 1e24, 1e26], max_unique_tokens=cap)
    assert np.all(table["D_upper"] <= cap * (1 + 1e-12))
    assert list(table["data_bound_prob"]) == sorted(table["data_bound_prob"])  # binds more as C grows
    # At 1e23 FLOP (0.9 decades past the runs) the cap binds only in the tail of the allocation's form uncertainty.
    assert table["data_bound_prob"].iloc[0] < 0.01 and table["data_bound_prob"].iloc[-1] == 1
    # The crossover is where the unconstrained median plan needs exactly U tokens: at the median crossover, half
    # of the draws' optimal plans need more than U (each draw's D_opt grows with C).
    c_med = table["crossover_C_median"].iloc[0]
    free = chinchilla_fit.allocate_draws(c_med)["D"].values.ravel()
    assert abs(np.mean(free > cap) - 0.5) <= 1.0 / free.size
    assert table["crossover_C_lower"].iloc[0] < c_med < table["crossover_C_upper"].iloc[0]
    print(f"\ncompute at which 2T unique tokens bind: {c_med:.3g} FLOP "
          f"[{table['crossover_C_lower'].iloc[0]:.3g}, {table['crossover_C_upper'].iloc[0]:.3g}]")


def test_allocate_rejects_bad_arguments(chinchilla_fit):
    with pytest.raises(ValueError, match="prob"):
        chinchilla_fit.allocate(1e24, prob=90)
    with pytest.raises(ValueError, match="budget"):
        chinchilla_fit.allocate([[1e24]])
    with pytest.raises(ValueError, match="budget"):
        chinchilla_fit.allocate("lots")


@pytest.mark.parametrize("bad", [True, [1e22, True], -1.0, float("nan"), "x", []])
def test_budgets_of_the_closed_form_and_the_form_shift_are_checked(bad):
    """A boolean is not a 1-FLOP budget; every public budget argument goes through validation.positive_array."""
    from bayescale.core.allocation import chinchilla_optimum
    from bayescale.core.shifts import allocation_shift

    p = dict(A=406.4, B=410.7, alpha=0.34, beta=0.28)
    with pytest.raises(ValueError, match="^budget must be"):
        chinchilla_optimum(p, bad)
    with pytest.raises(ValueError, match="^flops_per_param_token must be"):
        chinchilla_optimum(p, 1e22, bad)
    with pytest.raises(ValueError, match="^budget must be"):
        allocation_shift(None, bad)  # refused before the fit is looked at


# ------------------------------------------------------------------ coherent plans, nothing silent
class StandInFit:
    """The results contract (bayescale.analysis.contract) over given parameter draws, one chain, the law's form known."""

    draws_kind, point_params, hierarchical, form_uncertainty, converged, random_seed = "posterior", None, False, None, True, 0

    def __init__(self, params, runs):
        self.law = bs.laws.get_law("chinchilla")
        self.runs = bs.load_runs(runs)
        self._draws = {k: np.asarray(v, dtype=float).reshape(1, -1) for k, v in params.items()}
        self.draw_shape = self._draws["E"].shape

    def param_draws(self, group=None, *, random_seed=None):
        return dict(self._draws)

    def table_problems(self, what):
        return []


def stand_in_fit(params, runs=None):
    """What allocate reads of a fit: parameter draws (one chain) and the fitted runs."""
    if runs is None:
        runs = pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10], "loss": [3.0, 2.5]})
    return StandInFit(params, runs)


def quiet_allocate(fit, budgets, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        warnings.simplefilter("ignore", bs.DegenerateResultWarning)
        return allocate(fit, budgets, **kw)


positive = st.floats(1e-3, 1e6)
exponent = st.floats(0.01, 3.0)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(draws=st.lists(st.tuples(positive, positive, exponent, exponent), min_size=1, max_size=12),
       budgets=st.lists(st.floats(1e6, 1e32), min_size=1, max_size=4), k=st.sampled_from([6.0, 8.0]),
       cap=st.sampled_from([None, 1e12]))
def test_the_reported_plan_spends_exactly_the_budget(draws, budgets, k, cap):
    """However wide or split the draws (an even number of them with optima decades apart, as a degenerate fit
    gives), each row's median plan spends its budget: k N_median D_median / C = 1, and D/N is the plan's own."""
    A, B, alpha, beta = (np.array(v) for v in zip(*draws))
    fit = stand_in_fit(dict(E=np.full(A.size, 1.8), A=A, B=B, alpha=alpha, beta=beta))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        warnings.simplefilter("always", bs.DegenerateResultWarning)
        table = allocate(fit, budgets, flops_per_param_token=k, max_unique_tokens=cap)
    # Optima beyond float range (N_opt = 1e400 parameters) are not a plan: those rows must be named in a warning.
    cols = [f"{a}_{b}" for a in ("N", "D", "tokens_per_param") for b in ("median", "lower", "upper")]
    ok = np.isfinite(table[cols]).all(axis=1).to_numpy() & (table["D_median"] > 0).to_numpy()
    if not ok.all():
        ours = [w for w in caught if w.category is bs.DegenerateResultWarning]
        assert len(ours) == 1 and f"C = {table['C'][~ok].iloc[0]:.3g}" in str(ours[0].message)
    t = table[ok]
    np.testing.assert_allclose(k * t["N_median"] * t["D_median"] / t["C"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(t["tokens_per_param_median"], t["D_median"] / t["N_median"], rtol=1e-12)
    for name in ("N", "D", "tokens_per_param"):  # the intervals stay the draws' own quantiles around it
        assert np.all(t[f"{name}_lower"] <= t[f"{name}_median"] * (1 + 1e-12))
        assert np.all(t[f"{name}_median"] <= t[f"{name}_upper"] * (1 + 1e-12))
    np.testing.assert_allclose(k * t["N_upper"] * t["D_lower"] / t["C"], 1.0, rtol=1e-12)
    if cap is not None:
        assert np.all(t["D_median"] <= cap * (1 + 1e-12))


def test_two_draws_decades_apart_give_a_plan_that_spends_the_budget():
    # Before: the marginal medians (the mean of the two middle values) gave 6 N D / C of 4, 6e9 and 3e12.
    fit = stand_in_fit(dict(E=[1.8, 1.8], A=[480.0, 480.0], B=[2100.0, 2100.0], alpha=[0.1, 3.0], beta=[0.37, 0.37]))
    table = quiet_allocate(fit, [1e3, 1e20, 1e24])
    np.testing.assert_allclose(6 * table["N_median"] * table["D_median"], table["C"], rtol=1e-12)


def test_a_plan_below_one_parameter_is_not_reported_silently():
    fit = stand_in_fit(dict(E=[1.8], A=[480.0], B=[2100.0], alpha=[0.35], beta=[0.37]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        with pytest.warns(bs.DegenerateResultWarning, match=r"less than one parameter: N_median = 0\.\d+ at C = 10"):
            table = allocate(fit, [10.0, 1e24])
    assert table["N_median"].iloc[0] < 1 < table["N_median"].iloc[1]


def test_non_finite_draws_are_named_in_a_warning():
    """Overflowing draws (a fit to losses near 1e300 gives A = inf) make inf and NaN cells: the warning names
    the columns, the budgets and the parameter; no probability is computed over such draws."""
    fit = stand_in_fit(dict(E=[1.8, 1.8], A=[np.inf, 480.0], B=[2100.0, 2100.0], alpha=[0.35, 0.35],
                            beta=[0.37, 0.37]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        with pytest.warns(bs.DegenerateResultWarning) as caught:
            table = allocate(fit, [1e22, 1e24], max_unique_tokens=1e12)
    assert not [w for w in caught if w.category is RuntimeWarning]  # no bare NumPy warning beside ours
    ours = [w for w in caught if w.category is bs.DegenerateResultWarning]
    assert len(ours) == 1
    text = str(ours[0].message)
    assert text.startswith("allocate: not finite: ") and "N_upper" in text and "C = 1e+22; C = 1e+24" in text
    assert "A is not finite in 1 of 2 draws" in text
    assert table["data_bound_prob"].isna().all()
    # Every non-finite cell of the table is in a column the warning names.
    numeric = table.select_dtypes("number")
    for col in numeric.columns[~np.isfinite(numeric).all()]:
        assert col in text


def test_finite_tables_are_silent(chinchilla_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DegenerateResultWarning)
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        chinchilla_fit.allocate([1e21, 1e24, 1e27])


def test_degenerate_fit_at_one_point_gives_a_coherent_plan(chinchilla_fit):
    """All runs at one (N, D) with constant loss: the posterior is the prior's ridge, its optima spread over
    decades. Before: 6 N_median D_median / C came out as 11 (and 66, 370 or 339,171 with other seeds)."""
    runs = pd.DataFrame({"N": [1e8] * 8, "D": [2e9] * 8, "loss": [3.0] * 8})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.ScalingModel("chinchilla").fit(runs, draws=100, tune=100, chains=2, random_seed=1, escalate=False)
        budgets = [1e15, 1e18, 1e21, 1e24, 1e27]
        table = fit.allocate(budgets)
        risk = fit.risk(budgets, target=2.9)
    np.testing.assert_allclose(6 * table["N_median"] * table["D_median"], budgets, rtol=1e-12)
    np.testing.assert_allclose(6 * risk["N"] * risk["D"], budgets, rtol=1e-12)
    assert np.isfinite(table.select_dtypes("number")).all().all()
