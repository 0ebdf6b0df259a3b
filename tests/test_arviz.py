"""Results are ArviZ-standard: predictive groups on the scale of observed_data, prior groups, the PyMC model."""

import numpy as np
import pytest
import xarray as xr

import bayescale as bs
from bayescale.base.digest import DIGEST_ATTR


def test_posterior_predictive_matches_observed_data(chinchilla_fit):
    tree = chinchilla_fit.idata
    obs = tree["observed_data"]["log_loss"]
    pp = tree["posterior_predictive"]["log_loss"]
    assert pp.dims == ("chain", "draw", "run") and (pp["run"].values == obs["run"].values).all()
    assert pp.sizes["chain"] == tree["posterior"].sizes["chain"]
    # Same variable and scale (log loss): the predictive median sits on the observation, within a few sigma.
    err = np.abs(pp.median(("chain", "draw")).values - obs.values)
    assert np.median(err) < 0.01 and err.max() < 0.2
    assert np.isclose(obs.values, np.log(chinchilla_fit.runs.loss)).all()


def test_arviz_plots_predictive_checks_run_on_the_idata(chinchilla_fit):
    azp = pytest.importorskip("arviz_plots")
    pc = azp.plot_ppc_dist(chinchilla_fit.idata, backend="matplotlib", num_samples=5)
    assert pc.viz is not None
    azp.plot_ppc_pit(chinchilla_fit.idata, backend="matplotlib")


def test_saved_fit_keeps_the_group_and_old_files_get_it(chinchilla_fit, tmp_path):
    path = tmp_path / "fit.nc"
    chinchilla_fit.save(path)
    again = bs.load(path)
    np.testing.assert_allclose(again.idata["posterior_predictive"]["log_loss"].values,
                               chinchilla_fit.idata["posterior_predictive"]["log_loss"].values)
    # A file written before the group existed (and before files carried a digest): loading adds the same
    # draws (the fit's seed).
    old = again.idata.copy()
    del old["posterior_predictive"]
    old.attrs = {k: v for k, v in old.attrs.items() if k != DIGEST_ATTR}
    assert "posterior_predictive" not in old.children
    restored = bs.many.io.fit_from_tree(old)
    np.testing.assert_allclose(restored.idata["posterior_predictive"]["log_loss"].values,
                               chinchilla_fit.idata["posterior_predictive"]["log_loss"].values)


def test_sample_prior_adds_prior_groups(chinchilla_fit):
    fit = bs.many.io.fit_from_tree(chinchilla_fit.idata.copy())  # leave the session fixture as it is
    check = fit.sample_prior(200, random_seed=3)
    prior = fit.idata["prior"]
    assert set(fit.model.param_names) <= set(prior.data_vars)
    assert prior["E"].dims == ("chain", "draw") and prior.sizes["draw"] == 200
    ppc = fit.idata["prior_predictive"]["log_loss"]
    assert ppc.dims == ("chain", "draw", "run") and ppc.sizes["run"] == fit.runs.n_runs
    assert check.summary()["coverage"] > 0.5
    # The prior is much wider than the posterior on the same scale.
    post = fit.idata["posterior_predictive"]["log_loss"]
    assert float(ppc.std()) > 3 * float(post.std(("chain", "draw")).mean())


def test_build_gives_the_pymc_model(chinchilla_runs):
    import pymc as pm

    spec = bs.ScalingModel("chinchilla")
    model = spec.build(chinchilla_runs)
    assert isinstance(model, pm.Model)
    assert sorted(v.name for v in model.free_RVs) == ["A__centred", "B__centred", "E", "alpha", "beta", "nu",
                                                     "sigma"]
    np.testing.assert_allclose(model["observed_log_loss"].get_value(), np.log(chinchilla_runs["loss"]))
    assert "level_form_prior" in [p.name for p in spec.build(chinchilla_runs, level_form=True).potentials]
    # The plain form can be forward-sampled (the level form's flat variables cannot).
    prior = pm.sample_prior_predictive(draws=20, model=model, random_seed=1, var_names=["E", "log_loss"])
    assert prior["prior_predictive"]["log_loss"].shape[-1] == len(chinchilla_runs)
    with pytest.raises(bs.base.errors.DataError):
        spec.build(chinchilla_runs.drop(columns="loss"))


def test_posterior_predictive_check_feeds_arviz_plots(chinchilla_fit):
    pytest.importorskip("arviz_plots")
    held_out = chinchilla_fit.runs.frame.iloc[:30]
    check = bs.posterior_predictive(chinchilla_fit, held_out)
    tree = check.to_datatree()
    assert tree["posterior_predictive"]["log_loss"].dims == ("chain", "draw", "run")
    assert tree["observed_data"]["log_loss"].sizes["run"] == 30
    # The PIT arviz-plots computes equals the check's own (share of draws below the observation).
    pit = (tree["posterior_predictive"]["log_loss"] <= tree["observed_data"]["log_loss"]).mean(("chain", "draw"))
    np.testing.assert_allclose(pit.values, check.table["pit"].to_numpy(), atol=1e-6)
    assert check.plot_pit().viz is not None
