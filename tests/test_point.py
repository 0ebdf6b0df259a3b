"""Point-estimate baselines: Approach 3 reproduction, least squares, bootstrap, Approach 2."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

import bayescale as bs
from bayescale.fitting import pointfit
from bayescale.core import pointsearch
from bayescale.fitting import point
from bayescale.core.allocation import chinchilla_optimum
from conftest import TRUE_CHINCHILLA, simulate_chinchilla

PUBLISHED = bs.datasets.references()["besiroglu2024_hoffmann_procedure"]
#: A few starts around the truth, for tests about something other than the grid search.
NEAR_GRID = {"log_E": [0.5], "log_A": [5.0, 7.0], "log_B": [7.0, 9.0], "alpha": [0.3, 0.5], "beta": [0.3, 0.5]}


@pytest.fixture(scope="module")
def a3_boot(a3):
    return a3.bootstrap(200, random_seed=3)


# ------------------------------------------------------------- Approach 3
def test_approach3_reproduces_published_replication(a3):
    # Besiroglu et al. 2024 replicate Hoffmann's procedure on these 240 runs; the issue asks for 1%
    # on each parameter (the published values are rounded to 4-5 significant digits).
    for name, ref in PUBLISHED.items():
        assert a3.params[name] == pytest.approx(ref, rel=0.01), name
    assert a3.success
    # The published grid, and L-BFGS-B started from it.
    assert a3.starts.attrs["n_grid"] == 4500
    assert a3.starts["at_best"].sum() >= pointsearch.CONFIRMATIONS


@pytest.fixture(scope="module")
def a3_full(chinchilla_runs):
    """Approach 3 with every one of the 4500 starts run (about 20 s)."""
    return bs.Approach3(search="full").fit(chinchilla_runs)


def test_adaptive_search_finds_the_optimum_of_the_full_grid(a3, a3_full):
    # The adaptive search is a pruning of the published procedure: it must return the optimum the
    # full 4500-start search returns. Objectives agree to round-off (both end at gtol=1e-11, so the
    # parameters agree to ~1e-7 relative; 1e-6 leaves room for the flat directions of A and B).
    assert len(a3_full.starts) == 4500 and a3_full.starts.attrs["search"] == "full"
    assert len(a3.starts) < 100  # pruned: a small fraction of the grid was run
    assert a3.objective == pytest.approx(a3_full.objective, rel=1e-9)
    assert a3.objective <= a3_full.starts["objective"].min() * (1 + 1e-9)
    for name in a3_full.params:
        assert a3.params[name] == pytest.approx(a3_full.params[name], rel=1e-6), name
    # The full search also reproduces the published replication, and shows why many starts are
    # needed: the objective has many distinct end points, and most starts miss the best one.
    for name, ref in PUBLISHED.items():
        assert a3_full.params[name] == pytest.approx(ref, rel=0.01), name
    assert pointfit._count_minima(a3_full.starts) > 5
    assert a3_full.starts["at_best"].mean() < 0.5


@pytest.mark.parametrize("law_name, loss", [("chinchilla", "huber"), ("chinchilla", "squared"),
                                            ("kaplan", "squared_log")])
def test_compiled_objective_is_the_law_definition_and_its_gradient_is_exact(law_name, loss):
    law = bs.get_law(law_name)
    rng = np.random.default_rng(0)
    n = 30
    N = 10 ** rng.uniform(7, 10, n)
    frame = pd.DataFrame({"N": N, "D": N * 10 ** rng.uniform(0.5, 2, n), "loss": rng.uniform(2, 3, n)})
    if "U" in law.inputs:
        frame["U"] = frame["D"] / rng.uniform(1, 20, n)
    runs = bs.load_runs(frame, require=law.inputs)
    problem = pointsearch.Problem(law, loss, 1e-3, runs)
    w = rng.integers(0, 3, n).astype(float)
    fun = problem.single(w)
    theta = np.array([{"irreducible": 0.5, "coefficient": 6.0, "exponent": 0.3, "scale": 30.0,
                       "shape": 2.0}[p.kind] for p in law.parameters]) + rng.normal(0, 0.05, len(law.parameters))
    # Objective: the law's own NumPy definition, the loss written out independently.
    pred = law.log_loss(runs.inputs(law.inputs), pointsearch.to_params(law, theta))
    if loss == "squared":
        expected = np.sum(w * 0.5 * (np.exp(pred) - runs.loss) ** 2)
    else:
        r = pred - np.log(runs.loss)
        expected = np.sum(w * (special.huber(1e-3, r) if loss == "huber" else 0.5 * r**2))
    assert fun(theta)[0] == pytest.approx(expected, rel=1e-10)
    # Gradient against central finite differences (relative error of the whole vector).
    grad = fun(theta)[1]
    eps = 1e-6
    fd = np.array([(fun(theta + eps * e)[0] - fun(theta - eps * e)[0]) / (2 * eps) for e in np.eye(len(theta))])
    assert np.linalg.norm(grad - fd) <= 1e-5 * np.linalg.norm(fd)


# ---------------------------------------------------------- least squares
def test_least_squares_recovers_known_parameters():
    # 200 runs with 0.2% noise on log loss: the estimates must be within a few percent of the truth
    # (coefficients A, B are the least determined; 10% covers them, exponents and E get 2%).
    runs = simulate_chinchilla(n_runs=200, sigma=0.002, seed=11)
    for on in ("log_loss", "loss"):
        fit = bs.LeastSquares(on=on).fit(runs)
        for name in ("E", "alpha", "beta"):
            assert fit.params[name] == pytest.approx(TRUE_CHINCHILLA[name], rel=0.02), (on, name)
        for name in ("A", "B"):
            assert fit.params[name] == pytest.approx(TRUE_CHINCHILLA[name], rel=0.10), (on, name)
        assert fit.sigma == pytest.approx(0.002, rel=0.2)


def test_least_squares_fits_other_laws_exactly():
    N = np.geomspace(1e7, 1e11, 15)
    truth = dict(E=1.9, A=250.0, alpha=0.31)
    runs = pd.DataFrame({"N": N, "loss": bs.get_law("power_n").loss({"N": N}, truth)})
    fit = bs.LeastSquares("power_n").fit(runs)
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-4)


# --------------------------------------------------------------- bootstrap
def test_bootstrap_is_seeded_and_warm_started(a3, a3_boot):
    again = a3.bootstrap(200, random_seed=3)
    pd.testing.assert_frame_equal(again.boot, a3_boot.boot)
    other = a3.bootstrap(20, random_seed=4)
    assert not np.allclose(other.boot["alpha"].to_numpy(), a3_boot.boot["alpha"].to_numpy()[:20])
    assert a3_boot.boot["success"].mean() > 0.95
    assert a3_boot.params == a3.params  # bootstrapping does not move the estimate


def test_bootstrap_intervals_are_not_collapsed(a3_boot):
    # With loose L-BFGS-B tolerances the refits stop at the warm start and the intervals collapse.
    # Besiroglu et al. 2024 report standard errors 0.0154 (alpha) and 0.0206 (beta) on these runs for
    # their closely related Huber fit; 200 resamples estimate an sd to about 5% (1/sqrt(2*200)), so a
    # factor 1.5 either way separates "right size" from "collapsed" or "blown up".
    se = bs.datasets.references()["besiroglu2024_se"]
    table = a3_boot.summary(0.9)
    for name in ("alpha", "beta"):
        assert se[name] / 1.5 < table.loc[name, "sd"] < se[name] * 1.5, name
        assert table.loc[name, "lower"] < a3_boot.params[name] < table.loc[name, "upper"]


def test_bootstrap_interval_coverage_on_simulated_data():
    # 20 data sets of 60 runs from a known law with Normal noise on log loss; 90% percentile
    # intervals of alpha should cover the truth in about 90% of them (60 data sets x 200 resamples
    # gave 0.92-0.93 for every parameter). The count is Binomial(20, 0.9) for calibrated
    # intervals: P(count <= 14) is about 1%, so 15 is the floor.
    hits = 0
    for seed in range(20):
        runs = simulate_chinchilla(n_runs=60, sigma=0.01, seed=100 + seed)
        fit = bs.LeastSquares(grid=NEAR_GRID, search="full").fit(runs).bootstrap(100, random_seed=seed)
        row = fit.summary(0.9).loc["alpha"]
        hits += row["lower"] <= TRUE_CHINCHILLA["alpha"] <= row["upper"]
    assert hits >= 15


# -------------------------------------------------------------- read API
def test_predict_and_allocate_have_the_scaling_fit_columns(a3, a3_boot, chinchilla_fit):
    new = {"N": [70e9, 1e9], "D": [1.4e12, 2e10]}
    cols = chinchilla_fit.predict(new).columns.tolist()
    assert a3.predict(new).columns.tolist() == cols
    assert a3_boot.predict(new).columns.tolist() == cols
    budgets = [1e21, 5.88e23]
    want = chinchilla_fit.allocate(budgets).columns.tolist()
    assert a3.allocate(budgets).columns.tolist() == want
    assert a3_boot.allocate(budgets).columns.tolist() == want


def test_bands_of_a_point_fit(a3, a3_boot, chinchilla_runs):
    table = a3.predict(chinchilla_runs, prob=0.9)
    # No bootstrap: the curve band is the estimate itself.
    assert np.array_equal(table["curve_lower"], table["loss_median"])
    assert np.array_equal(table["curve_upper"], table["loss_median"])
    # The new-run band is built from the residual quantiles: in-sample it covers 90% of runs
    # (up to the discreteness of 240 runs).
    inside = (table["observed_loss"] >= table["new_run_lower"]) & (table["observed_loss"] <= table["new_run_upper"])
    assert 0.88 <= inside.mean() <= 0.92
    boot = a3_boot.predict({"N": [70e9], "D": [1.4e12]}, prob=0.9).iloc[0]
    assert boot["curve_lower"] < boot["loss_median"] < boot["curve_upper"]
    assert boot["new_run_lower"] < boot["curve_lower"] and boot["curve_upper"] < boot["new_run_upper"]


def test_log_predictive_density_is_the_normal_plug_in(a3, a3_boot, chinchilla_runs):
    runs = chinchilla_runs.tail(5)
    pred = a3.predict(runs)["loss_median"].to_numpy()
    want = stats.norm.logpdf(np.log(runs["loss"].to_numpy()), np.log(pred), a3.sigma)
    np.testing.assert_allclose(a3.log_predictive_density(runs), want, rtol=1e-10)
    assert a3.sigma == pytest.approx(np.sqrt(np.sum(a3.residuals()**2) / (240 - 5)))
    assert np.all(np.isfinite(a3_boot.log_predictive_density(runs)))


def test_allocation_is_the_closed_form_optimum(a3, a3_boot):
    row = a3.allocate(5.88e23).iloc[0]
    n, d = chinchilla_optimum(a3.params, 5.88e23)
    assert row["N_median"] == pytest.approx(float(n), rel=1e-9)
    assert row["D_median"] == pytest.approx(float(d), rel=1e-9)
    assert row["N_lower"] == row["N_upper"] == row["N_median"]
    # bayescale/runs/datasets/README.md: the replication's parameters imply about 20 tokens per parameter at this budget.
    assert 15 < row["tokens_per_param_median"] < 25
    b = a3_boot.allocate(5.88e23, prob=0.9).iloc[0]
    assert b["N_lower"] < b["N_median"] < b["N_upper"]
    assert b["tokens_per_param_lower"] < b["tokens_per_param_median"] < b["tokens_per_param_upper"]


def test_reports_say_what_to_do_next(a3, a3_boot):
    assert "fit.bootstrap(1000)" in repr(a3)
    report = a3_boot.fit_report()
    for section in ("[[Model]]", "[[Data]]", "[[Optimiser]]", "[[Parameters]]", "[[Residuals]]"):
        assert section in report
    assert "200 resamples" in report and "4500 grid starts" in report
    assert "Next:" in str(bs.Approach3())


def test_bad_settings_are_named():
    with pytest.raises(bs.SpecError, match="unknown loss 'l1'; valid: huber"):
        bs.PointModel(loss="l1")
    with pytest.raises(bs.SpecError, match=r"missing \['beta'\], unknown \['gamma'\]"):
        bs.PointModel(grid={"log_E": [0], "log_A": [5], "log_B": [5], "alpha": [0.3], "gamma": [0.3]})
    with pytest.raises(bs.SpecError, match="n_boot must be a non-negative integer, got -1"):
        bs.Approach3(n_boot=-1)
    with pytest.raises(bs.SpecError, match="unknown search 'random'"):
        bs.Approach3(search="random")
    with pytest.raises(bs.SpecError, match="on must be 'log_loss' or 'loss'"):
        bs.LeastSquares(on="log")
    with pytest.raises(bs.DataError, match="missing required column 'D'"):
        bs.Approach3().fit(pd.DataFrame({"N": [1e8] * 8, "loss": [3.0] * 8}))


def test_prob_is_checked(a3):
    with pytest.raises(ValueError, match="prob must be a number strictly between 0 and 1, got 90"):
        a3.predict({"N": [1e9], "D": [2e10]}, prob=90)
    with pytest.raises(ValueError, match="budget must be positive"):
        a3.allocate(-1.0)


# -------------------------------------------------------------- Approach 2
def _isoflop_runs(levels, seed=0, sigma=0.002):
    """Runs on isoFLOP profiles of the true law, 11 sizes within half a decade of each optimum."""
    rng = np.random.default_rng(seed)
    law = bs.get_law("chinchilla")
    rows = []
    for k, c in enumerate(levels):
        n_opt, _ = chinchilla_optimum(TRUE_CHINCHILLA, c)
        N = float(n_opt) * np.geomspace(10**-0.5, 10**0.5, 11)
        D = c / (6 * N)
        loss = law.loss({"N": N, "D": D}, TRUE_CHINCHILLA) * np.exp(sigma * rng.standard_normal(N.size))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": loss, "sweep": f"level{k}"}))
    return pd.concat(rows, ignore_index=True)


def test_isoflop_recovers_the_allocation_exponents():
    # The true exponents are a = beta / (alpha + beta), b = alpha / (alpha + beta). A parabola is only
    # an approximation of an isoFLOP profile, and the fitted minima carry noise: 0.02 tolerance.
    levels = np.geomspace(1e18, 1e22, 9)
    runs = _isoflop_runs(levels)
    a_true = TRUE_CHINCHILLA["beta"] / (TRUE_CHINCHILLA["alpha"] + TRUE_CHINCHILLA["beta"])
    by_levels = bs.IsoFLOP(levels=levels).fit(runs)
    assert by_levels.a == pytest.approx(a_true, abs=0.02)
    assert by_levels.a + by_levels.b == pytest.approx(1.0, abs=1e-9)
    by_group = bs.IsoFLOP(group="sweep").fit(runs)
    by_rounding = bs.IsoFLOP(resolution=0.25).fit(runs)
    assert by_group.a == pytest.approx(by_levels.a, rel=1e-9)
    assert by_rounding.a == pytest.approx(by_levels.a, rel=1e-9)
    table = by_levels.summary(0.9)
    assert table.loc["a", "lower"] < by_levels.a < table.loc["a", "upper"]
    alloc = by_levels.allocate([1e23])
    assert alloc["N_lower"].iloc[0] < alloc["N_median"].iloc[0] < alloc["N_upper"].iloc[0]
    assert not [c for c in alloc.columns if c.startswith("loss")]  # Approach 2 has no loss model: no NaN columns
    assert by_levels.converged and alloc["converged"].all()
    # k in C = k N D is honoured: the model size is k's own, D = C / (k N).
    k8 = by_levels.allocate([1e23], flops_per_param_token=8.0)
    assert k8["N_median"].iloc[0] == pytest.approx(alloc["N_median"].iloc[0], rel=1e-12)
    for table, k in ((alloc, 6.0), (k8, 8.0)):
        assert k * table["N_median"].iloc[0] * table["D_median"].iloc[0] == pytest.approx(1e23, rel=1e-9)
        assert table.attrs["flops_per_param_token"] == k
    with pytest.raises(ValueError, match="flops_per_param_token"):
        by_levels.allocate([1e23], flops_per_param_token=-1)


def test_isoflop_on_chinchilla_matches_hoffmann_approach2(chinchilla_runs):
    # Hoffmann et al. 2022, Table 2, Approach 2: a = 0.49 (0.462, 0.534), b = 0.51 (0.483, 0.529).
    fit = bs.IsoFLOP(levels=[6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]).fit(chinchilla_runs)
    assert 0.462 <= fit.a <= 0.534
    assert int(fit.levels["used"].sum()) == 9
    assert "Next:" in repr(fit) and "[[Exponents]]" in fit.fit_report()


def test_isoflop_errors_are_specific(chinchilla_runs):
    with pytest.raises(bs.BayescaleError, match="only 0 compute level"):
        bs.IsoFLOP(group="N").fit(chinchilla_runs)
    with pytest.raises(bs.SpecError, match="group column 'sweep' not in the runs"):
        bs.IsoFLOP(group="sweep").fit(chinchilla_runs)
    with pytest.raises(bs.SpecError, match="min_runs must be at least 3"):
        bs.IsoFLOP(min_runs=2)
    fit = bs.IsoFLOP(resolution=0.25).fit(chinchilla_runs)
    with pytest.raises(bs.BayescaleError, match="use fit.allocate"):
        fit.predict({"N": [1e9], "D": [1e10]})


# ------------------------------------------------------------------ converged means usable
def _short_ladder(seed, n=12):
    """A clean ladder of 12 runs, 1% noise, N and D spanning one decade: too short to pin down five parameters."""
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e8, 1e9, n)
    D = 20 * N
    loss = bs.get_law("chinchilla").loss({"N": N, "D": D}, TRUE_CHINCHILLA) * np.exp(0.01 * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def test_implausible_estimates_are_not_converged_and_their_tables_warn():
    # Before: converged=True with alpha = 6.97 and A = 3e54 (and on other seeds beta = -5.08, B = 7e-57).
    with pytest.warns(bs.ConvergenceWarning, match="Approach3 fit did not converge: exponent alpha = 6.97"):
        fit = bs.Approach3().fit(_short_ladder(2))
    assert not fit.success and not fit.converged and fit.optimizer_success
    assert fit.reason == "exponent alpha = 6.97 lies outside the plausible range 0.01 to 3"
    assert "NO (exponent alpha" in repr(fit) and "not converged: exponent alpha" in fit.fit_report()
    with pytest.warns(bs.DegenerateResultWarning, match=r"allocate: the Approach3 fit did not converge \(exponent"):
        table = fit.allocate([1e20, 1e22])
    assert not table["converged"].any()
    with pytest.warns(bs.DegenerateResultWarning, match="predict: the Approach3 fit did not converge"):
        fit.predict({"N": [1e9], "D": [2e10]})


@pytest.mark.parametrize("spec", [bs.LeastSquares(), bs.LeastSquares(on="loss"), bs.LeastSquares("power_n")],
                         ids=["log_loss", "loss", "power_n"])
def test_constant_loss_is_not_a_converged_fit(spec):
    """Constant loss has no power law in it: exponents at 0 (before: accepted, or negative) or terms that vanish.
    Many starts reach the same objective at different points, so the search stops early instead of running all
    starts (least squares on loss ran the whole grid for 7 minutes)."""
    runs = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 8), "D": 20 * np.geomspace(1e7, 1e9, 8), "loss": 3.0})
    with pytest.warns(bs.ConvergenceWarning, match="fit did not converge: (exponent|A = .* has no effect)"):
        fit = spec.fit(runs)
    assert not fit.converged and fit.reason
    assert len(fit.starts) < fit.starts.attrs["n_grid"]


def test_clean_ladders_still_converge(a3, synthetic_runs):
    assert a3.converged and a3.reason == "" and a3.optimizer_success
    fit = bs.LeastSquares().fit(synthetic_runs)
    assert fit.converged and fit.reason == ""


def _chinchilla_theta(E, logA, logB, alpha, beta):
    return np.array([np.log(E), logA, logB, alpha, beta])


LADDER = {"N": np.geomspace(1e7, 1e10, 10), "D": 20 * np.geomspace(1e7, 1e10, 10)}


@settings(max_examples=80, deadline=None, derandomize=True)
@given(E=st.floats(0.5, 4.0), logA=st.floats(0.0, 12.0), logB=st.floats(0.0, 14.0), alpha=st.floats(-3.0, 8.0),
       beta=st.floats(-3.0, 8.0))
def test_estimate_checks_accept_exactly_the_plausible_estimates(E, logA, logB, alpha, beta):
    law = bs.get_law("chinchilla")
    problems = pointsearch.estimate_problems(law, _chinchilla_theta(E, logA, logB, alpha, beta), LADDER)
    lo, hi = pointsearch.EXPONENT_RANGE
    for name, v in (("alpha", alpha), ("beta", beta)):
        assert (not lo <= v <= hi) == any(p.startswith(f"exponent {name} = ") for p in problems)
    if lo <= alpha <= hi and lo <= beta <= hi:
        # The terms' largest share of the loss over the runs: a term below 1e-7 of the loss moves nothing.
        share_a = np.max(np.exp(logA) * LADDER["N"] ** -alpha / law.loss(LADDER, dict(
            E=E, A=np.exp(logA), B=np.exp(logB), alpha=alpha, beta=beta)))
        if share_a > 1e-4:
            assert not any(p.startswith(("A = ", "alpha = ")) for p in problems), problems
        if share_a < 1e-8:
            assert any(p.startswith("A = ") for p in problems), problems


def test_point_fit_progress_when_asked(capsys):
    runs = pd.DataFrame({"N": np.geomspace(1e7, 1e10, 12), "loss": 2.0 + 300.0 * np.geomspace(1e7, 1e10, 12) ** -0.3})
    bs.LeastSquares("power_n").fit(runs, progressbar=True)
    assert "L-BFGS-B starts (12 runs)" in capsys.readouterr().err
