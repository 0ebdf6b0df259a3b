"""backtest() and split_runs(): fit on the small runs, score predictions of the held-out large ones."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

import bayescale as bs
from bayescale.across.backtest import split_runs
from conftest import TRUE_CHINCHILLA, simulate_chinchilla

SIGMA = 0.01
#: Synthetic ladders for the statistical backtest: 200 runs each, the 25% largest in compute held out.
SEEDS = (41, 42, 43, 44)


@pytest.fixture(scope="module")
def synthetic_backtests():
    """Per-run backtest tables (Bayesian model of known form and Approach 3 + bootstrap) on 4 ladders of known truth."""
    tables = []
    for k, seed in enumerate(SEEDS):
        runs = simulate_chinchilla(n_runs=200, sigma=SIGMA, seed=seed)
        # Simulated from the law itself: the form is known, so the model without form uncertainty is the right one.
        methods = {"Bayes": bs.ScalingModel("chinchilla", form_uncertainty=None),
                   "A3": bs.Approach3(n_boot=50, random_seed=k)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.ConvergenceWarning)
            table = bs.backtest(methods, runs, "C", fraction=0.25, random_seed=k, detail="run")
        tables.append(table.assign(ladder=k))
    return pd.concat(tables, ignore_index=True)


@pytest.fixture(scope="module")
def point_runs():
    return simulate_chinchilla(n_runs=80, sigma=SIGMA, seed=7)


def test_bayesian_new_run_band_covers_held_out_runs_at_its_nominal_rate(synthetic_backtests):
    bayes = synthetic_backtests[synthetic_backtests["method"] == "Bayes"]
    n = len(bayes)
    assert n == 4 * 50
    # 50 held-out runs per ladder, 200 in all. Runs of one ladder share that fit's parameter error,
    # so the count is not Binomial(200, p): 20 ladders of this very design (200 runs, top 25% by C
    # held out, simulated once) gave per-ladder coverage with mean 0.91 and sd 0.069 for the 90%
    # band (binomial sd 0.042) and mean 0.46, sd 0.088 for the 50% band (binomial 0.071). The
    # mean of 4 ladders then has sd 0.035 and 0.044; the tolerance is 3 of those. A band that
    # ignored half the spread (about 0.6 coverage for a nominal 90%) fails by far.
    per_ladder = bayes.groupby("ladder")[["covered_90", "covered_50"]].mean()
    for p, ladder_sd in ((0.9, 0.069), (0.5, 0.088)):
        coverage = per_ladder[f"covered_{int(100 * p)}"].mean()
        assert abs(coverage - p) <= 3 * ladder_sd / np.sqrt(len(SEEDS)), (p, coverage)


def test_bayesian_errors_and_density_are_near_the_truth(synthetic_backtests):
    bayes = synthetic_backtests[synthetic_backtests["method"] == "Bayes"]
    law = bs.get_law("chinchilla")
    mu = law.loss({"N": bayes["N"].to_numpy(), "D": bayes["D"].to_numpy()}, TRUE_CHINCHILLA)
    z = np.log(bayes["observed_loss"].to_numpy() / mu) / SIGMA
    # Median predictions: the noise alone gives a mean APE of sigma * sqrt(2 / pi) = 0.80% (sd over
    # 200 runs 0.04 points); extrapolation error of the curve adds to it, typically 0.5 sigma.
    assert 0.6 < bayes["ape"].mean() < 1.3
    # Log predictive density against the oracle (the true curve and noise): the fitted model cannot
    # beat it by more than chance (sd of the oracle mean ~0.05 nats over 200 runs) and loses about
    # 0.5 * bias^2 per run for a curve off by `bias` sigmas: 0.4 nats allows a 0.9 sigma bias.
    oracle = np.mean(stats.norm.logpdf(z) - np.log(SIGMA))
    assert oracle - 0.4 < bayes["lpd"].mean() < oracle + 0.15


def test_backtest_lpd_is_the_posterior_averaged_density(chinchilla_runs):
    # The lpd column of a Bayesian method is log mean_s p(y | theta_s) under its Student-t likelihood.
    train, test = split_runs(chinchilla_runs, "C", cutoff=1e21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        fit = bs.ScalingModel("chinchilla").fit(train, random_seed=3, draws=300, chains=2)
    table = bs.backtest({"Bayes": lambda runs: fit}, chinchilla_runs, "C", cutoff=1e21, detail="run")
    post = fit.posterior
    law = bs.get_law("chinchilla")
    params = {k: post[k].values.ravel()[:, None] for k in law.param_names}
    mu = law.log_loss({"N": test.frame["N"].to_numpy()[None], "D": test.frame["D"].to_numpy()[None]}, params)
    ll = stats.t.logpdf(np.log(test.loss)[None], df=post["nu"].values.ravel()[:, None], loc=mu,
                        scale=post["sigma"].values.ravel()[:, None])
    want = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    np.testing.assert_allclose(table["lpd"].to_numpy(), want, rtol=1e-9)
    assert table["method"].eq("Bayes").all() and len(table) == 23


def test_method_table_columns_and_per_run_agreement(point_runs):
    methods = {"A3": bs.Approach3(n_boot=30, random_seed=0), "LS": bs.LeastSquares()}
    table = bs.backtest(methods, point_runs, "C", fraction=0.2)
    assert table.columns.tolist() == ["method", "n_train", "n_test", "mape", "max_ape", "coverage_50", "width_50",
                                      "coverage_90", "width_90", "lpd", "converged", "fit_seconds",
                                      "rel_width_50", "interval_score_50", "rel_width_90", "interval_score_90", "crps"]
    assert table["method"].tolist() == ["A3", "LS"]
    assert table["n_train"].tolist() == [64, 64] and table["n_test"].tolist() == [16, 16]
    assert table["converged"].all() and np.isfinite(table["lpd"]).all()
    assert (table["width_90"] > table["width_50"]).all()
    assert table.attrs["band"] == "new_run" and table.attrs["holdout"].startswith("C >= ")
    # The per-method scores are the means of the per-run table, for every method.
    runs = bs.backtest(methods, point_runs, "C", fraction=0.2, detail="run")
    for name, group in runs.groupby("method", sort=False):
        row = table.set_index("method").loc[name]
        assert row["mape"] == pytest.approx(group["ape"].mean())
        assert row["max_ape"] == pytest.approx(group["ape"].max())
        assert row["coverage_90"] == pytest.approx(group["covered_90"].mean())
        assert row["width_50"] == pytest.approx((group["new_run_upper_50"] - group["new_run_lower_50"]).mean())
        assert row["lpd"] == pytest.approx(group["lpd"].mean())
        assert row["crps"] == pytest.approx(group["crps"].mean())
        assert row["interval_score_90"] == pytest.approx(group["interval_score_90"].mean())
        width = group["new_run_upper_90"] - group["new_run_lower_90"]
        assert row["rel_width_90"] == pytest.approx((width / group["observed_loss"]).mean())
        # A covering band scores its width; a miss scores more.
        covered = group["covered_90"].to_numpy()
        np.testing.assert_allclose(group["interval_score_90"].to_numpy()[covered], width.to_numpy()[covered])
        assert (group["interval_score_90"].to_numpy()[~covered] > width.to_numpy()[~covered]).all()
        # Held-out runs lie at or beyond the largest training compute.
        assert (group["beyond"] >= group["beyond_C"]).all() and (group["beyond_C"] >= 0).all()
        ape = 100 * np.abs(group["loss_median"] - group["observed_loss"]) / group["observed_loss"]
        np.testing.assert_allclose(group["ape"], ape)


def test_fits_made_on_the_training_runs_are_scored_as_they_are(point_runs):
    train, _ = split_runs(point_runs, "C", fraction=0.2)
    fit = bs.LeastSquares().fit(train)
    given = bs.backtest({"LS": fit}, point_runs, "C", fraction=0.2)
    made = bs.backtest({"LS": bs.LeastSquares()}, point_runs, "C", fraction=0.2)
    scores = ["mape", "max_ape", "coverage_50", "width_50", "coverage_90", "width_90", "lpd"]
    pd.testing.assert_frame_equal(given[scores], made[scores])
    assert np.isnan(given["fit_seconds"].iloc[0]) and made["fit_seconds"].iloc[0] > 0
    # A fit that has seen the held-out runs is refused.
    with pytest.raises(bs.SpecError, match="fit made on 80 runs that are not this backtest's 64 training runs"):
        bs.backtest({"LS": bs.LeastSquares().fit(point_runs)}, point_runs, "C", fraction=0.2)


def test_holdout_by_compute_size_tokens_and_mask(point_runs):
    frame = bs.load_runs(point_runs).frame
    for column in ("C", "N", "D"):
        cutoff = float(np.quantile(frame[column], 0.8))
        train, test = split_runs(point_runs, column, cutoff=cutoff)
        assert test.n_runs == int((frame[column] >= cutoff).sum()) and train.n_runs + test.n_runs == 80
        assert train.frame[column].max() < cutoff <= test.frame[column].min()
    # Default: the largest 10% by the column, ties at the boundary held out too.
    train, test = split_runs(point_runs, "N")
    assert test.n_runs == 8 and test.frame["N"].min() > train.frame["N"].max()
    mask = np.zeros(80, dtype=bool)
    mask[::4] = True
    train, test = split_runs(point_runs, mask)
    np.testing.assert_allclose(test.frame["N"], frame["N"].to_numpy()[mask])
    table = bs.backtest({"LS": bs.LeastSquares()}, point_runs, mask)
    assert table.attrs["holdout"] == "mask" and table["n_test"].iloc[0] == 20
    table = bs.backtest({"LS": bs.LeastSquares()}, point_runs, "N", cutoff=float(np.quantile(frame["N"], 0.8)))
    assert table.attrs["holdout"].startswith("N >= ") and table["n_test"].iloc[0] == 16


def test_split_on_the_bundled_chinchilla_runs(chinchilla_runs):
    # 23 of the 240 runs have C >= 1e21 FLOPs (the largest below it is 9.95e20).
    train, test = split_runs(chinchilla_runs, "C", cutoff=1e21)
    assert (train.n_runs, test.n_runs) == (217, 23)
    assert int((chinchilla_runs["C"] >= 1e21).sum()) == 23


def test_bad_holdout_specs_are_named(point_runs):
    ls = {"LS": bs.LeastSquares()}
    with pytest.raises(bs.SpecError, match="holdout='loss': cut on one of C, N, D, or pass a boolean mask"):
        bs.backtest(ls, point_runs, "loss")
    with pytest.raises(bs.SpecError, match=r"leaves no held-out runs among the 80; C ranges from"):
        bs.backtest(ls, point_runs, "C", cutoff=1e30)
    with pytest.raises(bs.SpecError, match="leaves no training runs"):
        bs.backtest(ls, point_runs, "N", cutoff=1.0)
    with pytest.raises(bs.SpecError, match="a holdout mask must be an array of 80 booleans"):
        bs.backtest(ls, point_runs, np.ones(79, dtype=bool))
    with pytest.raises(bs.SpecError, match="got dtype int64"):
        bs.backtest(ls, point_runs, np.zeros(80, dtype=int))
    with pytest.raises(bs.SpecError, match="give cutoff= or fraction=, not both"):
        bs.backtest(ls, point_runs, "C", cutoff=1e20, fraction=0.2)
    with pytest.raises(bs.SpecError, match="fraction must be strictly between 0 and 1, got 1.5"):
        bs.backtest(ls, point_runs, "C", fraction=1.5)
    with pytest.raises(bs.SpecError, match="apply to a column holdout, not to a mask"):
        bs.backtest(ls, point_runs, np.ones(80, dtype=bool), cutoff=1.0)
    with pytest.raises(bs.SpecError, match="isoFLOP fit, which predicts allocations, not losses"):
        bs.backtest({"iso": bs.IsoFLOP()}, point_runs)
    with pytest.raises(bs.SpecError, match="must be a ScalingModel, a PointModel"):
        bs.backtest({"x": 3}, point_runs)
    with pytest.raises(bs.SpecError, match="methods must be a non-empty dict"):
        bs.backtest([bs.LeastSquares()], point_runs)
    with pytest.raises(ValueError, match="every prob must be strictly between 0 and 1"):
        bs.backtest(ls, point_runs, prob=(0.5, 90))
    with pytest.raises(bs.SpecError, match="detail must be one of"):
        bs.backtest(ls, point_runs, detail="runs")
