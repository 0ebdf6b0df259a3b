"""Approach 1 (Hoffmann et al. 2022): power laws of the compute-efficient frontier, with bootstrap."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs

TRUE = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
A_TRUE = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])   # N_opt ∝ C^a
B_TRUE = TRUE["alpha"] / (TRUE["alpha"] + TRUE["beta"])  # D_opt ∝ C^b


def simulate_curves(params=TRUE, sizes=np.geomspace(1e7, 1e10, 13), n_points=40, sigma=0.0, seed=0):
    """Training curves: per model size, the law at tokens seen D = N ... 300 N, times log-normal noise."""
    rng = np.random.default_rng(seed)
    law = bs.get_law("chinchilla")
    rows = []
    for r, n in enumerate(sizes):
        d = np.geomspace(n, 300 * n, n_points)
        loss = law.loss({"N": np.full_like(d, n), "D": d}, params) * np.exp(sigma * rng.standard_normal(n_points))
        rows.append(pd.DataFrame({"run": r, "N": n, "D": d, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def simulate_isoflop(params=TRUE, levels=np.geomspace(1e18, 1e22, 9), per_level=15, seed=0):
    """Final runs on IsoFLOP levels: 15 model sizes over two decades around the true optimum, shifted at random."""
    rng = np.random.default_rng(seed)
    law = bs.get_law("chinchilla")
    g = (params["alpha"] * params["A"] / (params["beta"] * params["B"])) ** (1 / (params["alpha"] + params["beta"]))
    rows = []
    for c in levels:
        n = g * (c / 6) ** A_TRUE * np.geomspace(0.1, 10, per_level) * 10 ** rng.uniform(-0.05, 0.05)
        rows.append(pd.DataFrame({"N": n, "C": c, "loss": law.loss({"N": n, "D": c / (6 * n)}, params)}))
    return pd.concat(rows, ignore_index=True)


def quantisation_bound(fit, half_step):
    """Largest error of a least-squares slope when every log10 N_opt is off by at most `half_step` decades."""
    x = np.log10(fit.frontier.loc[fit.frontier["used"], "C"].to_numpy())
    dx = x - x.mean()
    return half_step * np.abs(dx).sum() / (dx @ dx)


def test_curves_of_a_known_law_give_its_exponents():
    # Noise-free curves on a ladder of sizes 0.1 decade apart: the envelope's N_opt is the best size of the
    # ladder (tests/test_envelope.py checks that against brute force), within a step (0.1 decade) of the true
    # optimum; the slope error is bounded accordingly (worst case; measured 0.004).
    fit = bs.Approach1(n_boot=0).fit(simulate_curves(sizes=np.geomspace(1e7, 1e10, 31)))
    assert fit.method == "curves" and fit.converged
    bound = quantisation_bound(fit, 0.1)
    assert bound < 0.06
    assert abs(fit.a - A_TRUE) < bound and abs(fit.b - B_TRUE) < bound
    assert fit.a + fit.b == pytest.approx(1.0, abs=1e-9)  # D = C / (6 N) along the curves


def test_noisy_curves_bootstrap_interval_covers_the_truth():
    fit = bs.Approach1(n_boot=200, random_seed=3).fit(simulate_curves(sigma=0.002, seed=3))
    s = fit.summary(0.9)
    assert s.attrs["interval"] == "bootstrap percentile"
    assert s.loc["a", "lower"] < A_TRUE < s.loc["a", "upper"]
    assert s.loc["b", "lower"] < B_TRUE < s.loc["b", "upper"]
    assert abs(fit.a - A_TRUE) < 0.03  # seed 3: error 0.012; noise of 0.2% moves which size wins near the flat optimum
    again = bs.Approach1(n_boot=200, random_seed=3).fit(simulate_curves(sigma=0.002, seed=3))
    assert again.boot.equals(fit.boot)  # seeded


def test_final_runs_on_isoflop_levels_give_the_exponents():
    fit = bs.Approach1(n_boot=0).fit(simulate_isoflop(seed=4))
    assert fit.method == "levels"
    # sizes 1/7 decade apart: each level's best run is within 1/14 decade of the optimum
    assert abs(fit.a - A_TRUE) < quantisation_bound(fit, 1 / 14)
    assert fit.summary().attrs["interval"] == "t interval"


def test_chinchilla_runs_near_hoffmann_approach_1(chinchilla_runs):
    # Hoffmann et al.'s Approach 1 (training curves): a = 0.50, b = 0.50. The bundled runs are final points
    # only, so this is the best run per fifth of a decade of compute: a = 0.47 (90% bootstrap 0.45-0.57).
    fit = bs.Approach1(n_boot=200, random_seed=0).fit(chinchilla_runs)
    s = fit.summary()
    assert fit.method == "bins" and fit.converged
    assert 0.42 < fit.a < 0.58 and s.loc["a", "lower"] < 0.5 < s.loc["a", "upper"]
    alloc = fit.allocate([1e21])
    assert {"N_median", "N_lower", "N_upper", "D_median", "converged", "beyond"} <= set(alloc.columns)
    assert alloc["N_lower"].iloc[0] <= alloc["N_median"].iloc[0] <= alloc["N_upper"].iloc[0]
    assert 6 * alloc["N_median"].iloc[0] * alloc["D_median"].iloc[0] == pytest.approx(1e21)


def test_appears_in_compare_beside_approach_2(chinchilla_runs):
    a1 = bs.Approach1(n_boot=100, random_seed=0).fit(chinchilla_runs)
    a2 = bs.IsoFLOP(resolution=0.25).fit(chinchilla_runs)
    cmp = bs.compare([a1, a2], budget=[1e22])
    assert list(cmp.methods.index) == ["Approach 1 (envelope)", "Approach 2 (isoFLOP)"]
    assert cmp.methods.loc["Approach 1 (envelope)", "interval"].startswith("bootstrap percentile")
    assert cmp.params.loc["a", ("Approach 1 (envelope)", "estimate")] == pytest.approx(a1.a)
    assert cmp.allocations.columns.get_level_values(0).unique().tolist() == list(cmp.methods.index)


def test_bad_settings_and_too_few_points():
    with pytest.raises(bs.SpecError, match="n_boot"):
        bs.Approach1(n_boot=-1)
    with pytest.raises(bs.SpecError, match="bins_per_decade"):
        bs.Approach1(bins_per_decade="5")
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8], "C": [1e19, 1e20, 1e21], "loss": [3.0, 2.8, 2.6]})
    with pytest.raises(bs.BayescaleError, match="frontier point"):
        bs.Approach1(n_boot=0).fit(runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bs.Approach1(n_boot=0, drop_edges=False).fit(runs)
