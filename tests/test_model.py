import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TRUE_CHINCHILLA, simulate_chinchilla

import bayescale as bs
from bayescale.base.errors import SpecError
from bayescale.core.priors import Gamma, HalfNormal, LogNormal, Normal

PUBLISHED_CI95 = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}  # Besiroglu et al. 2024


def test_unknown_prior_name_lists_valid_names():
    with pytest.raises(SpecError, match="valid names: E, A, B, alpha, beta, sigma, nu"):
        bs.ScalingModel("chinchilla", priors={"gamma": LogNormal(0, 1)})


def test_coefficient_prior_must_be_lognormal():
    with pytest.raises(SpecError, match="'A' is a coefficient: its prior must be LogNormal"):
        bs.ScalingModel("chinchilla", priors={"A": Gamma(2, 0.01)})


def test_positive_parameter_refuses_prior_with_negative_support():
    with pytest.raises(SpecError, match="'alpha' must be positive"):
        bs.ScalingModel("chinchilla", priors={"alpha": Normal(0.3, 0.1)})


def test_at_only_for_coefficients():
    with pytest.raises(SpecError, match="'at' applies only to coefficient"):
        bs.ScalingModel("chinchilla", priors={"E": LogNormal(0, 1, at=1e9)})


def test_prior_must_be_a_prior_object():
    with pytest.raises(SpecError, match="bayescale.core.priors object"):
        bs.ScalingModel("chinchilla", priors={"E": {"family": "LogNormal"}})


def test_unknown_likelihood_and_sampler():
    with pytest.raises(SpecError, match="valid: student_t, normal"):
        bs.ScalingModel("chinchilla", likelihood="huber")
    with pytest.raises(SpecError, match="valid: nutpie, pymc, numpyro"):
        bs.ScalingModel("chinchilla").fit(simulate_chinchilla(n_runs=20), sampler="hmc")


def test_normal_likelihood_has_no_nu():
    assert bs.ScalingModel("power_n", likelihood="normal").param_names == ("E", "A", "alpha", "sigma")


def test_str_says_what_to_call_next():
    text = str(bs.ScalingModel("chinchilla", priors={"alpha": LogNormal(-1.0, 0.5)}))
    assert "alpha    LogNormal(mu=-1, sigma=0.5)" in text
    assert "data-scaled default" in text and "model.fit(runs)" in text


def test_spec_round_trip():
    m = bs.ScalingModel("kaplan", priors={"sigma": HalfNormal(0.05)}, likelihood="normal")
    again = bs.ScalingModel.from_dict(m.to_dict())
    assert again.to_dict() == m.to_dict()


def test_too_few_runs_for_the_law():
    with pytest.raises(bs.DataError, match="need at least 7 runs"):
        bs.ScalingModel("chinchilla").fit(simulate_chinchilla(n_runs=5))


def test_build_of_groups_pooled_in_level_coordinates_says_to_use_the_level_form():
    # The default pooling for groups varies them in level coordinates; the plain graph has no such coordinates
    # and raised a KeyError ('E_group_sd').
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8] * 4, "D": [2e9, 4e9, 8e9, 1.6e10] * 4, "loss": 3.0,
                         "group": ["a"] * 8 + ["b"] * 8})
    with pytest.raises(ValueError, match=r"level_form=True.*pooling=\{'E': 'partial'\}"):
        bs.ScalingModel("chinchilla").build(runs)
    assert "level_group_sd" in [v.name for v in bs.ScalingModel("chinchilla").build(runs, level_form=True).free_RVs]
    assert "E_group_sd" in [v.name for v in bs.ScalingModel("chinchilla", pooling={"E": "partial"}).build(runs).free_RVs]


def test_resolved_priors_use_data_centres(synthetic_runs):
    priors = bs.ScalingModel("chinchilla").resolve_priors(synthetic_runs)
    centre = float(np.exp(np.mean(np.log(synthetic_runs["N"]))))
    assert priors["A"].at == pytest.approx(centre)
    assert set(priors) == {"E", "A", "B", "alpha", "beta", "sigma", "nu"}


def test_published_reference_on_real_data(chinchilla_fit):
    """Posterior medians inside the published 95% bootstrap intervals, converged, no divergences."""
    table = chinchilla_fit.summary()
    for name, (lo, hi) in PUBLISHED_CI95.items():
        assert lo <= table.loc[name, "median"] <= hi, (name, table.loc[name, "median"])
    d = chinchilla_fit.diagnostics()
    assert d["max_r_hat"] <= 1.01
    assert d["divergences"] == 0
    assert d["min_ess_bulk"] >= 400


def test_centring_keeps_tree_depth_low(chinchilla_fit):
    # Uncentred, this posterior needs ~180-350 leapfrog steps per draw; centred, about 7.
    assert chinchilla_fit.diagnostics()["mean_leapfrog_steps"] <= 31


def test_recovery_of_known_parameters(synthetic_fit):
    table = synthetic_fit.summary(prob=0.9)
    for name, truth in TRUE_CHINCHILLA.items():
        row = table.loc[name]
        # Truth inside the 90% HDI, and the median within 3 posterior sd of it.
        assert row["lower"] <= truth <= row["upper"], (name, truth, row.to_dict())
        assert abs(row["median"] - truth) <= 3 * row["sd"], name
    assert synthetic_fit.summary().loc["E", "median"] == pytest.approx(TRUE_CHINCHILLA["E"], rel=0.02)


def test_interval_coverage_over_simulated_ladders():
    """Across 20 simulated ladders, the 90% intervals of the 5 law parameters cover the truth ~90%.

    100 intervals (correlated within a ladder) with nominal 0.9: a binomial sd of 3 points; the
    bounds [0.78, 0.99] are about 4 sd below and 3 sd above, wide enough for the correlation.
    """
    hits = []
    model = bs.ScalingModel("chinchilla")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        for seed in range(20):
            fit = model.fit(simulate_chinchilla(n_runs=60, sigma=0.02, seed=100 + seed), draws=500, tune=500,
                            random_seed=seed)
            post = fit.posterior
            for name, truth in TRUE_CHINCHILLA.items():
                lo, hi = np.quantile(post[name].values, [0.05, 0.95])
                hits.append(lo <= truth <= hi)
    coverage = float(np.mean(hits))
    assert 0.78 <= coverage <= 0.99, coverage


def test_a_tight_prior_on_A_is_honoured(synthetic_runs):
    """The prior is stated on A itself (at=None) although the sampler works on centred coefficients."""
    model = bs.ScalingModel("chinchilla", priors={"A": LogNormal(np.log(300.0), 0.01)})
    fit = model.fit(synthetic_runs, draws=500, random_seed=3)
    assert fit.converged, fit.diagnostics()
    assert fit.summary().loc["A", "median"] == pytest.approx(300.0, rel=0.03)


@pytest.mark.filterwarnings("ignore::bayescale.base.errors.ConvergenceWarning")  # short chains; only determinism is tested
def test_same_seed_same_posterior(synthetic_runs):
    model = bs.ScalingModel("chinchilla")
    a = model.fit(synthetic_runs, draws=200, tune=300, random_seed=11)
    b = model.fit(synthetic_runs, draws=200, tune=300, random_seed=11)
    c = model.fit(synthetic_runs, draws=200, tune=300, random_seed=12)
    assert all(np.array_equal(a.posterior[v], b.posterior[v]) for v in a.posterior.data_vars)
    assert not np.array_equal(a.posterior["E"], c.posterior["E"])


def test_too_short_a_run_warns_with_advice(synthetic_runs):
    with pytest.warns(bs.ConvergenceWarning, match="increase draws"):
        fit = bs.ScalingModel("chinchilla").fit(synthetic_runs, draws=15, tune=15, random_seed=0)
    assert not fit.converged


def test_normal_likelihood_recovers_noise_scale():
    runs = simulate_chinchilla(n_runs=80, sigma=0.02, seed=5)
    fit = bs.ScalingModel("chinchilla", likelihood="normal").fit(runs, draws=500, tune=500, random_seed=1)
    lo, hi = fit.summary(prob=0.95).loc["sigma", ["lower", "upper"]]
    assert lo <= 0.02 <= hi
    assert "nu" not in fit.posterior


def test_pymc_sampler_agrees_with_nutpie(synthetic_runs, synthetic_fit):
    fit = bs.ScalingModel("chinchilla").fit(synthetic_runs, draws=300, tune=300, chains=2, random_seed=4,
                                            sampler="pymc")
    ours, ref = fit.summary(), synthetic_fit.summary()
    for name in ("E", "alpha", "beta"):
        # Two samplers, same posterior: medians agree within a fraction of a posterior sd.
        assert abs(ours.loc[name, "median"] - ref.loc[name, "median"]) < 0.5 * ref.loc[name, "sd"], name


def test_fits_from_threads_take_turns_on_the_shared_graph():
    """Two threads fitting different ladders with one model get exactly the fits made one after the other.

    The compiled graph of a model is cached per process and each fit swaps its data into it; without the
    sampling module's lock, one thread's data would replace the other's mid-fit.
    """
    from concurrent.futures import ThreadPoolExecutor

    model = bs.ScalingModel("chinchilla")
    ladders = [simulate_chinchilla({**TRUE_CHINCHILLA, "E": e}, n_runs=40, seed=30 + i) for i, e in enumerate((1.7, 2.1))]
    settings = dict(draws=150, tune=150, chains=2, random_seed=5, progressbar=False, escalate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [model.fit(runs, **settings) for runs in ladders]
        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(lambda runs: model.fit(runs, **settings), ladders))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a.posterior["E"].values, b.posterior["E"].values)
    assert abs(float(together[1].posterior["E"].median()) - float(together[0].posterior["E"].median())) > 0.2
