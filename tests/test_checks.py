"""Prior and posterior predictive checks."""

import numpy as np
import pytest
from conftest import TRUE_CHINCHILLA, simulate_chinchilla
from matplotlib.figure import Figure

import bayescale as bs
from bayescale.analysis.checks import posterior_predictive, prior_draws, prior_predictive
from bayescale.base.errors import DataError, SpecError
from bayescale.analysis.hierarchy import simulate_groups
from bayescale.core.priors import HalfNormal, LogNormal


def test_default_priors_cover_the_runs_without_being_flat(chinchilla_runs):
    """Data-scaled defaults are weakly informative: every run inside the 90% band, the band a decade or two."""
    check = prior_predictive(bs.ScalingModel("chinchilla"), chinchilla_runs, random_seed=1)
    s = check.summary()
    assert s["coverage"] >= 0.9
    assert 0.5 < s["band_decades"] < 3
    table = check.table
    assert len(table) == len(chinchilla_runs) and table.attrs["prob"] == 0.9
    assert (table["prior_lower"] < table["prior_median"]).all() and (table["prior_median"] < table["prior_upper"]).all()


def test_published_preset_is_tighter_and_centred_on_the_data(chinchilla_runs):
    """The Besiroglu et al. preset was fitted to these very runs: its prior predictive hugs them."""
    default = prior_predictive(bs.ScalingModel("chinchilla"), chinchilla_runs, random_seed=1).summary()
    preset = prior_predictive(bs.ScalingModel.from_spec("chinchilla_besiroglu2024"), chinchilla_runs,
                              random_seed=1)
    s = preset.summary()
    assert s["coverage"] == 1.0 and s["plausible_draws"] > 0.95
    assert s["band_decades"] < default["band_decades"] / 2
    # the median prior curve is within 5% of the runs (the published fit's residuals are about 2%)
    table = preset.table
    assert np.median(np.abs(np.log(table["prior_median"] / table["observed_loss"]))) < 0.05


def test_a_prior_that_misses_the_data_shows(chinchilla_runs):
    """E ~ LogNormal(log 30, 0.1): every curve sits far above all runs (losses 2 to 3.5)."""
    model = bs.ScalingModel("chinchilla", priors={"E": LogNormal(np.log(30.0), 0.1)})
    check = prior_predictive(model, chinchilla_runs, draws=400, random_seed=2)
    assert check.summary()["coverage"] == 0.0
    assert check.summary()["plausible_draws"] < 0.01
    assert (check.table["observed_quantile"] < 0.01).all()


def test_coefficient_priors_are_on_the_term_at_their_reference_point(chinchilla_runs):
    """log(A / at**alpha) ~ Normal(mu, sigma), as in the fitted model; a default prior's `at` is the data's centre."""
    model = bs.ScalingModel("chinchilla", priors={"A": LogNormal(-1.0, 0.3, at=1e9)})
    priors = model.resolve_priors(chinchilla_runs)
    d = prior_draws(model, priors, 20000, np.random.default_rng(0))
    term = np.log(d["A"]) - d["alpha"] * np.log(1e9)
    # 20000 independent draws: standard errors 0.002 (mean) and 0.0015 (sd)
    assert term.mean() == pytest.approx(-1.0, abs=0.01) and term.std() == pytest.approx(0.3, abs=0.01)
    b = priors["B"]
    term_b = np.log(d["B"]) - d["beta"] * np.log(b.at)
    assert term_b.mean() == pytest.approx(b.mu, abs=0.05) and term_b.std() == pytest.approx(b.sigma, rel=0.03)
    assert np.log(d["alpha"]).std() == pytest.approx(priors["alpha"].sigma, rel=0.03)


def test_pooled_parameters_are_drawn_for_a_new_group():
    """log E of a new group = log E_pop + sd z: variance sigma_pop^2 + E[sd^2] (HalfNormal(0.2): 0.04)."""
    runs = simulate_groups([10, 10], dict(E=[1.7, 1.9], A=480.0, B=2100.0, alpha=0.35, beta=0.37))
    model = bs.ScalingModel("chinchilla", pooling={"E": "partial"},
                            priors={"E": LogNormal(0.5, 0.1), "E_group_sd": HalfNormal(0.2)})
    d = prior_draws(model, model.resolve_priors(runs), 40000, np.random.default_rng(1))
    assert np.log(d["E"]).mean() == pytest.approx(0.5, abs=0.005)
    assert np.log(d["E"]).var() == pytest.approx(0.1**2 + 0.2**2, rel=0.03)  # relative s.e. of a variance ~1%
    with pytest.raises(SpecError, match="no prior for"):
        prior_draws(model, {}, 10, np.random.default_rng(1))


def test_prior_predictive_plot_and_curves(chinchilla_runs):
    check = prior_predictive(bs.ScalingModel("chinchilla"), chinchilla_runs, draws=200, random_seed=3)
    curves = check.curves(points=30)
    assert curves["expected_loss"].shape == (200, 30)
    n = curves["N"].values
    assert n.min() == pytest.approx(chinchilla_runs["N"].min() / 3) and n.max() == pytest.approx(
        chinchilla_runs["N"].max() * 3)
    ratio = np.median(chinchilla_runs["D"] / chinchilla_runs["N"])
    np.testing.assert_allclose(curves["D"].values / n, ratio)
    fig = check.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "D = " in ax.get_xlabel()
    assert "inside the 90% band" in ax.get_title()


def test_prior_predictive_refuses_bad_arguments(chinchilla_runs):
    model = bs.ScalingModel("chinchilla")
    with pytest.raises(ValueError, match="prob must be"):
        prior_predictive(model, chinchilla_runs, prob=1.5)
    with pytest.raises(SpecError, match="draws must be a positive integer"):
        prior_predictive(model, chinchilla_runs, draws=0)


# ---------------------------------------------------------------- posterior
def test_posterior_predictive_in_sample(synthetic_fit):
    """120 runs from the model's own family: about 90% inside the 90% band, PIT close to uniform.

    Coverage of 120 runs has a binomial sd of 2.7 points; in-sample bands are slightly optimistic, so we
    accept 80% to 99%.
    """
    check = posterior_predictive(synthetic_fit)
    s = check.summary().iloc[0]
    assert check.in_sample and s["in_sample"]
    assert 0.8 <= s["coverage"] <= 0.99
    assert s["pit_ks_pvalue"] > 0.001
    assert s["rms_log_residual"] == pytest.approx(0.01, rel=0.3)  # the simulated noise is 1% on log loss
    table = check.table
    assert "converged" in table and table["converged"].all() == synthetic_fit.converged
    assert isinstance(check.plot(), Figure)


def test_posterior_predictive_on_held_out_runs(synthetic_fit):
    """New runs from the same truth are covered; runs 10% worse than the truth are flagged."""
    held = simulate_chinchilla(TRUE_CHINCHILLA, n_runs=100, seed=77)
    s = posterior_predictive(synthetic_fit, held, random_seed=1).summary().iloc[0]
    assert not s["in_sample"]
    assert s["coverage"] >= 0.8  # binomial sd 3 points around 90%
    worse = held.assign(loss=held["loss"] * 1.1)
    s = posterior_predictive(synthetic_fit, worse, random_seed=1).summary().iloc[0]
    assert s["coverage"] < 0.2 and s["pit_ks_pvalue"] < 1e-6
    with pytest.raises(DataError, match="loss"):
        posterior_predictive(synthetic_fit, held.drop(columns="loss"))

