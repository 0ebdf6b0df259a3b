"""Checkpoint data: rows of one training run modelled as one run (ScalingModel within_run).

One ladder of 30 runs, each with 20 checkpoints over the last 30% of its tokens, from a known law with
a per-run offset (sd 0.02) and checkpoint noise (sd 0.01), is fitted three ways: with per-run offsets
(the default for data with run ids), with every row independent (within_run="none"), and on the final
checkpoints only. Three fits, two model graphs (the offset graph and the plain Normal one).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import bayescale as bs
from bayescale.base.errors import CheckpointWarning, DataError, SpecError
from bayescale.fitting.loglik import within_run_loglik
from bayescale.core.simulate import simulate_curves
from bayescale.fitting.modelruns import offset_count

TRUE = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
RUN_SD, NOISE_SD, CHECKPOINTS = 0.02, 0.01, 20
SAMPLING = dict(draws=1000, tune=1000, chains=2, random_seed=5, escalate=False)


@pytest.fixture(scope="module")
def ladder():
    rng = np.random.default_rng(1)
    N = np.geomspace(3e7, 3e9, 30)
    return simulate_curves(TRUE, N, N * 10 ** rng.uniform(0.5, 2.0, N.size), checkpoints=CHECKPOINTS, first=0.7,
                           run_sd=RUN_SD, noise_sd=NOISE_SD, random_seed=3)


def _fit(model, runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        return model.fit(runs, **SAMPLING)


@pytest.fixture(scope="module")
def fits(ladder):
    normal = dict(likelihood="normal", form_uncertainty=None)
    return {"offset": _fit(bs.ScalingModel(**normal), ladder),
            "iid": _fit(bs.ScalingModel(**normal, within_run="none"), ladder),
            "final": _fit(bs.ScalingModel(**normal), ladder.groupby("run", sort=False).tail(1))}


def widths(fit):
    table = fit.summary(0.9)
    return table["upper"] - table["lower"]


# ------------------------------------------------------------------ what the model is for
def test_checkpoints_of_a_run_count_as_one_run_not_twenty(fits):
    # Measured (this ladder and seed): 90% widths offset / final-only E 0.53, alpha 0.80, beta 0.53; iid / offset
    # E 0.16, alpha 0.26, beta 0.31 (1 / sqrt(20) = 0.22); with other sampler seeds and 500 draws the first ratios
    # ranged 0.53-0.61 (E), 0.80-0.87 (alpha), 0.53-0.58 (beta). The offset fit is at most about twice narrower
    # than the final points alone: late checkpoints say little beyond their run's level, which the offset absorbs
    # (beta and E gain some from the within-run slope, which is real information under the law). The iid fit
    # counts each run twenty times.
    off, iid, final = widths(fits["offset"]), widths(fits["iid"]), widths(fits["final"])
    for name in ("E", "alpha", "beta"):
        assert 0.35 < off[name] / final[name] < 1.6, (name, off[name], final[name])
        assert iid[name] / off[name] < 0.45, (name, iid[name], off[name])


def test_offset_intervals_cover_the_truth_and_iid_intervals_do_not(fits):
    table = fits["offset"].summary(0.9)
    truth = dict(TRUE, sigma=NOISE_SD, run_sd=RUN_SD)
    for name in ("E", "alpha", "beta", "sigma", "run_sd"):
        assert table.loc[name, "lower"] < truth[name] < table.loc[name, "upper"], name
    iid = fits["iid"].summary(0.9)  # measured E in [1.904, 1.970]: the repeated rows make it overconfident
    assert not iid.loc["E", "lower"] < TRUE["E"] < iid.loc["E", "upper"]


def test_run_sd_is_recovered(fits):
    # measured median 0.0215 (the 30 drawn offsets have sd 0.0227); 90% interval [0.0162, 0.0270]
    assert fits["offset"].summary().loc["run_sd", "estimate"] == pytest.approx(RUN_SD, rel=0.25)
    assert fits["offset"].within_run == "offset" and fits["iid"].within_run == "none"
    assert "run_sd" not in fits["final"].posterior  # final rows only: one row per run, no offsets


# ------------------------------------------------------------------ the contract of a fit with offsets
def test_new_runs_get_a_new_offset(fits):
    fit = fits["offset"]
    post = fit.posterior
    params = {k: post[k].values[..., None] for k in ("sigma", "run_sd")}
    noise = fit.noise_draws(params, params["sigma"].shape[:2] + (2000,), np.random.default_rng(0))
    expected = np.sqrt(np.median(params["sigma"] ** 2 + params["run_sd"] ** 2))
    assert np.std(noise) == pytest.approx(expected, rel=0.05)
    band = fit.predict({"N": [3e8], "D": [6e9]})
    assert np.log(band["new_run_upper"] / band["new_run_lower"]).iloc[0] > 2 * 1.645 * 0.019


def test_pointwise_loglik_adds_up_to_each_runs_marginal_density(fits, ladder):
    fit = fits["offset"]
    ll = fit.idata["log_likelihood"]["log_loss"]
    assert ll.shape == fit.draw_shape + (len(ladder),)
    post = fit.posterior.isel(chain=0, draw=0)
    mu = np.log(fit.law.loss({"N": ladder["N"].to_numpy(), "D": ladder["D"].to_numpy()},
                             {k: float(post[k]) for k in fit.law.param_names}))
    rows = (ladder["run"] == "r4").to_numpy()
    cov = float(post["sigma"]) ** 2 * np.eye(rows.sum()) + float(post["run_sd"]) ** 2
    joint = stats.multivariate_normal.logpdf(np.log(ladder["loss"].to_numpy()[rows]) - mu[rows], cov=cov)
    assert float(ll.isel(chain=0, draw=0).values[rows].sum()) == pytest.approx(joint, abs=1e-8)
    by_run = fit.idata["log_likelihood"]["log_loss_by_run"]
    assert by_run.sizes["run_id"] == 30
    assert float(by_run.sel(run_id="r4").isel(chain=0, draw=0)) == pytest.approx(joint, abs=1e-8)
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k > 0.7: leaving out a whole run is influential
        assert np.isfinite(az.loo(fit.idata, var_name="log_loss_by_run").elpd)  # leave-one-run-out
    lpd = fit.log_predictive_density(ladder)
    assert lpd.shape == (len(ladder),) and np.all(np.isfinite(lpd))
    draws = fit.log_likelihood_draws(ladder.head(40))
    np.testing.assert_allclose(np.log(np.exp(draws).reshape(-1, 40).mean(axis=0)), lpd[:40], rtol=1e-10)
    assert np.isfinite(fit.loo().elpd)


def test_student_t_marginal_over_the_offset_matches_numerical_integration():
    rng = np.random.default_rng(0)
    for n, sigma, run_sd, nu in [(1, 0.02, 0.05, 4.0), (20, 0.002, 0.03, 3.0), (20, 0.01, 0.001, 2.5)]:
        resid = 0.01 + sigma * rng.standard_t(nu, n) + rng.normal(0, run_sd)
        one = np.ones((1, 1, 1))
        ll = within_run_loglik(resid[None, None, :], sigma * one, run_sd * one, np.zeros(n, int), np.arange(n),
                               nu * one).sum()

        def integrand(u):
            return np.exp(stats.t.logpdf(resid, nu, loc=u, scale=sigma).sum() + stats.norm.logpdf(u, scale=run_sd)
                          - ll)
        ratio = integrate.quad(integrand, -1, 1, points=[resid.mean()], limit=500, epsabs=0)[0]
        assert np.log(ratio) == pytest.approx(0.0, abs=1e-4)


def test_summary_report_and_saved_file_carry_the_offsets(fits, ladder, tmp_path):
    fit = fits["offset"]
    assert "run_sd" in fit.summary().index
    report = fit.fit_report()
    assert "30 training runs by 'run' id; within run: per-run offset" in report and "run_sd" in report
    fit.save(tmp_path / "fit.nc")
    back = bs.load(tmp_path / "fit.nc")
    assert back.within_run == "offset" and back.runs.run_ids == fit.runs.run_ids
    np.testing.assert_allclose(back.log_predictive_density(ladder.head(40)),
                               fit.log_predictive_density(ladder.head(40)))


# ------------------------------------------------------------------ settings and data (no sampling)
def cosine_frame():
    return pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3 + ["c"] * 2, "N": [1e8] * 3 + [3e8] * 3 + [1e9] * 2,
                         "D": [1e9, 2e9, 3e9, 1e9, 2e9, 3e9, 5e9, 1e10],
                         "loss": [3.3, 3.1, 3.0, 3.1, 2.9, 2.8, 2.6, 2.5],
                         "schedule": ["constant"] * 3 + ["cosine"] * 3 + ["wsd"] * 2,
                         "D_total": [np.nan] * 3 + [3e9] * 3 + [np.nan] * 2})


def test_mid_cosine_rows_are_left_out_with_a_warning_that_counts_them():
    model = bs.ScalingModel(likelihood="normal")
    with pytest.warns(CheckpointWarning, match="2 of 8 rows are checkpoints mid-way through a cosine schedule"):
        built = model.build(cosine_frame())
    assert built["observed_log_loss"].get_value().size == 6  # the cosine run keeps its final row
    assert "run_sd" in [v.name for v in built.free_RVs]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # no cosine rows: no warning
        model.build(cosine_frame().assign(schedule="constant", D_total=np.nan))


def test_without_run_ids_the_model_is_unchanged():
    from bayescale.fitting.graph import _key

    runs = bs.load_runs(simulate_curves(TRUE, [1e8, 3e8, 1e9], 2e10, checkpoints=3).drop(columns="run"))
    model = bs.ScalingModel()
    assert offset_count(model, runs) == 0 and set(model.resolve_priors(runs)) == set(model.param_names)
    assert "run_sd" not in [v.name for v in model.build(runs).free_RVs]
    priors = model.resolve_priors(runs)
    assert _key(model, priors) == _key(model, priors, 1, 0)
    with pytest.raises(DataError, match="within_run='offset' needs a 'run' column"):
        bs.ScalingModel(within_run="offset").build(runs)
    checkpoints = simulate_curves(TRUE, [1e8, 3e8, 1e9], 2e10, checkpoints=3)
    with pytest.raises(SpecError, match="undertuned=True with per-run offsets needs likelihood='normal'"):
        bs.ScalingModel(undertuned=True).build(checkpoints)
    assert bs.ScalingModel(undertuned=True, within_run="none").build(checkpoints) is not None


def test_within_run_setting_is_checked_and_kept_in_specs():
    with pytest.raises(SpecError, match="within_run must be one of 'auto', 'offset', 'none', got 'ar1'"):
        bs.ScalingModel(within_run="ar1")
    model = bs.ScalingModel("power_n", within_run="offset", priors={"run_sd": bs.priors.HalfNormal(0.01)})
    assert model.to_dict()["within_run"] == "offset" and "within_run" not in bs.ScalingModel().to_dict()
    back = bs.ScalingModel.from_dict(model.to_dict())
    assert back.within_run == "offset" and back.priors["run_sd"] == bs.priors.HalfNormal(0.01)
    from bayescale.core.specs import to_toml

    assert 'within_run = "offset"' in to_toml(model)
    with pytest.raises(SpecError, match="no parameter 'run_sd'"):
        bs.ScalingModel(within_run="none", priors={"run_sd": bs.priors.HalfNormal(0.01)})


def test_simulated_curves_share_an_offset_within_each_run():
    runs = simulate_curves(TRUE, np.geomspace(1e8, 1e9, 40), 2e10, checkpoints=5, run_sd=0.05, noise_sd=0.001,
                           random_seed=2)
    assert runs.groupby("run").size().eq(5).all() and list(runs.columns) == ["run", "N", "D", "C", "loss"]
    resid = np.log(runs["loss"]) - np.log(bs.get_law("chinchilla").loss({"N": runs["N"], "D": runs["D"]}, TRUE))
    by_run = resid.groupby(runs["run"], sort=False)
    np.testing.assert_allclose(by_run.mean(), runs.attrs["offsets"], atol=0.002)  # noise sd 0.001 / sqrt(5)
    assert by_run.std().max() < 0.004


def test_student_t_and_grouped_models_carry_one_offset_per_run():
    frame = simulate_curves(TRUE, [1e8, 3e8, 1e9, 3e9], 2e10, checkpoints=3).assign(group=["x"] * 6 + ["y"] * 6)
    built = bs.ScalingModel(pooling={"E": "partial"}).build(frame)
    offsets = built["run_offset"]
    assert offsets.type.shape == (4,) and {"run_sd", "E_group_sd"} <= {v.name for v in built.free_RVs}
    assert built["run_offset__centring"].get_value().tolist() == [1.0] * 4  # several rows each: centred
    plain = bs.ScalingModel().build(frame.drop(columns="group"), level_form=True)  # level form keeps the offsets
    assert plain["run_offset"].type.shape == (4,) and "level__log" in {v.name for v in plain.free_RVs}


def test_the_number_of_free_offsets_is_part_of_the_cached_structure():
    from bayescale.fitting.graph import graph_for

    runs = {r: bs.load_runs(simulate_curves(TRUE, np.geomspace(1e8, 1e9, r), 2e10, checkpoints=3)) for r in (4, 5)}
    for likelihood, shared in (("student_t", False), ("normal", True)):  # Normal: offsets integrated out, R is data
        model = bs.ScalingModel(likelihood=likelihood)
        graphs = [graph_for(model, model.resolve_priors(runs[r]), 1, offset_count(model, runs[r])) for r in (4, 5)]
        assert (graphs[0] is graphs[1]) == shared
        assert graphs[0].published[-1] == "run_sd"
