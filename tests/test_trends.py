"""Kaplan's trends L(C_min), L(D), D(C) and their crossover; the Chinchilla law's gap between the two."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

import bayescale as bs
from bayescale.across.trends import OffFrontierWarning, chinchilla_gap, kaplan_crossover

# Known trends with irreducible terms (the power_c and power_d laws), whose frontier trend ends lower (E_C < E_D):
# they cross at C* = 3.9e22 FLOP, 1.6 decades beyond the largest run.
PC = dict(E=1.75, K=1937.0, gamma=0.169)
PD = dict(E=1.94, B=5375.0, beta=0.40)
K_D, B_EXP = 5.1, 0.49  # D along the frontier: D = K_D C^B_EXP


def l_c(c):
    return PC["E"] + PC["K"] / c ** PC["gamma"]


def l_d(d):
    return PD["E"] + PD["B"] / d ** PD["beta"]


def d_of(c):
    return K_D * c ** B_EXP


def true_crossover():
    return np.exp(brentq(lambda lc: l_c(np.exp(lc)) - l_d(d_of(np.exp(lc))), np.log(1e18), np.log(1e30)))


def simulate(seed=0, sigma=0.003):
    """Frontier runs on L(C) at 17 compute values, two runs 10% above it per value, and data-limited runs on L(D)."""
    rng = np.random.default_rng(seed)
    c = np.geomspace(1e17, 1e21, 17)
    d = d_of(c)
    n = c / (6 * d)
    rows = [pd.DataFrame({"N": n, "D": d, "loss": l_c(c) * np.exp(sigma * rng.standard_normal(c.size))})]
    for f in (1 / 3, 3):
        rows.append(pd.DataFrame({"N": n * f, "D": d / f, "loss": 1.1 * l_c(c) * np.exp(sigma * rng.standard_normal(c.size))}))
    runs = pd.concat(rows, ignore_index=True)
    dd = np.geomspace(d.min(), d.max(), 17)
    data = pd.DataFrame({"N": 1e12, "D": dd, "loss": l_d(dd) * np.exp(sigma * rng.standard_normal(dd.size))})
    return runs, data


@pytest.fixture(scope="module")
def synthetic():
    runs, data = simulate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        res = kaplan_crossover(runs, data_runs=data, draws=300, tune=300, chains=2, n_boot=100, random_seed=0)
    return runs, data, res


def test_crossover_matches_the_true_one(synthetic):
    runs, data, res = synthetic
    row = res.table.iloc[0]
    truth = true_crossover()
    assert row["crossing_prob"] == 1.0 and row["converged"]
    # C* lies 1.3-1.9 decades beyond the runs, where the irreducible terms decide; the 90% interval spans about
    # 0.6 decade and over seeds 0-2 the median fell 0.13-0.35 decade from the truth: 0.5 decade allowed.
    assert abs(np.log10(row["C_median"] / truth)) < 0.5
    assert row["C_lower"] < truth < row["C_upper"]
    assert row["loss_median"] == pytest.approx(l_c(truth), abs=0.05)
    assert row["beyond_C"] == pytest.approx(np.log10(row["C_median"] / 1e21), abs=1e-9)
    assert row["N_median"] > 0 and row["compute_fit_on_frontier"] and abs(row["frontier_below_fit"]) < 0.002
    # the trends were fitted on the right runs: the frontier is the 17 runs on L(C), the data-limited ones L(D)
    assert len(res.frontier) == 17 and np.allclose(res.frontier["loss"], l_c(res.frontier["C"]), rtol=0.02)
    assert (res.data_limited["N"] == 1e12).all() and len(res.data_limited) == 10  # one per fifth of a decade of D
    assert res.exponents.loc["b", "median"] == pytest.approx(B_EXP, abs=1e-6)  # D(C) exact on the frontier


def test_each_draw_solves_the_crossing_like_brentq(synthetic):
    _runs, _data, res = synthetic
    p = res._params
    rng = np.random.default_rng(0)
    for s in rng.choice(np.flatnonzero(res.draws["status"] == "crosses"), 15, replace=False):
        def g(lc, s=s):
            c = np.exp(lc)
            d = np.exp(p["log_kD"][s] + p["b"][s] * lc)
            return (p["C"]["E"][s] + p["C"]["K"][s] / c ** p["C"]["gamma"][s]
                    - p["D"]["E"][s] - p["D"]["B"][s] / d ** p["D"]["beta"][s])
        root = brentq(g, np.log(1e17), np.log(1e40), xtol=1e-12)
        assert np.log(res.draws["C"].iloc[s]) == pytest.approx(root, abs=1e-6)
    t = res.trends([res.table["C_median"].iloc[0]])
    assert t["loss_C_median"].iloc[0] == pytest.approx(t["loss_D_median"].iloc[0], rel=0.02)
    fig = res.plot()
    assert isinstance(fig, bs.base.figure.Figure)


def test_power_c_fit_on_all_runs_is_flagged(synthetic):
    runs, data, res = synthetic
    all_runs = bs.LeastSquares("power_c").fit(runs)
    with pytest.warns(OffFrontierWarning, match="not a trend of the compute-efficient frontier"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.ExtrapolationWarning)
            flagged = kaplan_crossover(runs, data_runs=data, compute_fit=all_runs, data_fit=res.data_fit, n_boot=50,
                                       random_seed=0)
    row = flagged.table.iloc[0]
    # two thirds of the runs lie 10% above the frontier: the all-runs curve sits about 6% above it
    assert not row["compute_fit_on_frontier"] and 0.03 < row["frontier_below_fit"] < 0.1
    assert "NOT on the frontier" in repr(flagged)


def test_flag_on_the_chinchilla_runs(chinchilla_runs, synthetic):
    # all 240 runs: the frontier lies 1.2% below the power_c curve; the frontier's own fit: 0.0%
    from bayescale.runs.envelope import frontier
    from bayescale.across.trends import frontier_below_fit

    front = frontier(chinchilla_runs)
    all_runs = bs.LeastSquares("power_c").fit(chinchilla_runs)
    own = bs.LeastSquares("power_c").fit(front[["N", "D", "C", "loss"]])
    assert frontier_below_fit(all_runs, front) > 0.01
    assert abs(frontier_below_fit(own, front)) < 0.001
    with pytest.warns(OffFrontierWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.ExtrapolationWarning)
            kaplan_crossover(chinchilla_runs, compute_fit=all_runs, data_fit=synthetic[2].data_fit, n_boot=20,
                             random_seed=0)


def test_bad_input_fails_before_fitting(synthetic):
    runs, data, res = synthetic
    with pytest.raises(bs.SpecError, match="compute_fit must be a fit of the 'power_c' law"):
        kaplan_crossover(runs, compute_fit=res.data_fit)
    with pytest.raises(bs.SpecError, match="c_range"):
        kaplan_crossover(runs, c_range=(1e30, 1e20))
    with pytest.raises(ValueError, match="prob"):
        kaplan_crossover(runs, prob=1.5)
    with pytest.raises(bs.SpecError, match="draws"):
        kaplan_crossover(runs, draws=0)
    with pytest.raises(bs.DataError):
        kaplan_crossover(pd.DataFrame({"N": [1e8], "D": [-1.0], "loss": [3.0]}))
    with pytest.raises(bs.SpecError, match="law in N and D"):
        chinchilla_gap(res.compute_fit, 1e22)


def test_chinchilla_gap_is_the_model_term_and_positive(a3):
    with pytest.warns(bs.ExtrapolationWarning, match="1.9 decades of compute"):
        gap = chinchilla_gap(a3.bootstrap(50, random_seed=0), [1e20, 1e22, 1e24])
    p = a3.params
    assert (gap["gap_lower"] > 0).all() and (gap["gap_positive_prob"] == 1.0).all()
    assert (np.diff(gap["gap_median"]) < 0).all()  # shrinks with compute but never closes
    point = chinchilla_gap(a3, [1e22])
    out = bs.optimal_allocation("chinchilla", p, [1e22])
    assert point["gap_median"].iloc[0] == pytest.approx(p["A"] / out["N"][0] ** p["alpha"], rel=1e-9)
    assert point["data_limited_loss_median"].iloc[0] == pytest.approx(p["E"] + p["B"] / out["D"][0] ** p["beta"], rel=1e-9)
    assert gap.attrs["interval"] == "bootstrap percentile"
