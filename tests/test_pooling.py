"""Groups that vary in level coordinates: every law parameter partial, groups that truly differ.

Synthetic design: three 30-run groups whose exponents differ (alpha 0.25, 0.34, 0.45; beta 0.30, 0.36,
0.33), with different irreducible losses and noise (0.5% and 3% on log loss), the case where pooling must
keep real differences. The fit is the default one (Student-t, 4 x 1000 draws, escalation on).
"""

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.analysis.checks import prior_draws
from bayescale.core.laws import get_law
from bayescale.core.pooling import (Pooling, default_level_sd_prior, from_level, level_coordinates, level_terms,
                               pooled_in_level_form, to_level)
from conftest import LEVEL_GROUPS as TRUE, level_groups

ALL = {k: "partial" for k in ("E", "A", "B", "alpha", "beta")}


def _runs():
    return level_groups()


@pytest.fixture(scope="module")
def level_fit(grouped_level_fit):
    return grouped_level_fit


def test_level_coordinates_round_trip():
    law = get_law("chinchilla")
    rng = np.random.default_rng(0)
    v = {"E": rng.uniform(0.5, 3, 50), "A": rng.uniform(0.01, 2, 50), "B": rng.uniform(0.01, 2, 50),
         "alpha": rng.uniform(0.05, 1.5, 50), "beta": rng.uniform(0.05, 1.5, 50)}
    back = from_level(law, to_level(law, v))
    for k in v:
        np.testing.assert_allclose(back[k], v[k], rtol=1e-12)
    one = get_law("power_n")
    assert [c for c, _ in level_coordinates(one)] == ["level", "E_share", "alpha_slope"]
    w = {"E": v["E"], "A": v["A"], "alpha": v["alpha"]}
    back = from_level(one, to_level(one, w))
    np.testing.assert_allclose(back["A"], w["A"], rtol=1e-12)


def test_level_pooling_applies_when_every_law_parameter_is_partial():
    law = get_law("chinchilla")
    assert level_terms(law) == (("A", "alpha"), ("B", "beta"))
    assert pooled_in_level_form(law, Pooling(ALL))
    assert not pooled_in_level_form(law, Pooling({"E": "partial", "A": "partial"}))
    assert not pooled_in_level_form(get_law("kaplan"), Pooling({k: "partial" for k in get_law("kaplan").param_names}))
    m = bs.ScalingModel("chinchilla", pooling=ALL)
    assert m.hyper_names == ("E_pop", "A_pop", "B_pop", "alpha_pop", "beta_pop", "sigma_pop", "level_group_sd",
                             "E_share_group_sd", "A_weight_group_sd", "alpha_slope_group_sd", "beta_slope_group_sd",
                             "sigma_group_sd")
    assert "level coordinates" in str(m)
    priors = m.resolve_priors(_runs())
    assert priors["level_group_sd"] == default_level_sd_prior("level")
    assert priors["sigma_group_sd"] == default_level_sd_prior("noise")
    with pytest.raises(bs.base.errors.SpecError, match="level_group_sd"):
        bs.ScalingModel("chinchilla", priors={"level_group_sd": bs.priors.HalfNormal(0.1)})


def test_prior_draws_of_a_new_group_spread_in_level_coordinates():
    m = bs.ScalingModel("chinchilla", pooling=ALL)
    priors = m.resolve_priors(_runs())
    d = prior_draws(m, priors, 4000, np.random.default_rng(0))
    assert set(d) == set(m.param_names)
    # the priors are wide: a coefficient's far tail can pass 1e308 (measured: 5 of 4000 draws of B)
    assert all(np.mean(np.isfinite(v)) > 0.99 and (v > 0).all() for v in d.values())
    # a new group's exponents spread around the population's: medians as the priors' (0.3), wider tails
    assert 0.25 < np.median(d["alpha"]) < 0.36 and np.quantile(d["alpha"], 0.99) < 20


def test_level_pooled_fit_converges_and_keeps_the_groups_apart(level_fit):
    """Converged at defaults; each group's E, alpha and beta in its 90% interval; alpha of g0 below g2's.

    Nine 90% intervals: were they independent, P(4 or more misses) = 0.8%; we allow 3. The planted exponents
    differ by 0.2 (g0 vs g2); pooling that erased it would put P(alpha_g0 < alpha_g2) near 0.5.
    """
    d = level_fit.diagnostics()
    assert level_fit.converged, d
    assert d["divergences"] == 0
    post = level_fit.posterior
    assert post["alpha"].dims == ("chain", "draw", "group") and post["sigma"].dims == ("chain", "draw", "group")
    misses = 0
    for name in ("E", "alpha", "beta"):
        for g in range(3):
            lo, hi = np.quantile(post[name].sel(group=f"g{g}").values, [0.05, 0.95])
            misses += not lo <= TRUE[name][g] <= hi
    assert misses <= 3
    a = post["alpha"].values
    assert np.mean(a[..., 0] < a[..., 2]) > 0.95
    # per-group noise: the 3% group's sigma above both 0.5% groups' in most draws
    s = post["sigma"].values
    assert np.mean((s[..., 1] > s[..., 0]) & (s[..., 1] > s[..., 2])) > 0.9


def test_a_new_group_is_drawn_from_the_level_population(level_fit):
    new = level_fit.param_draws(None, random_seed=5)
    # three groups leave the spreads wide: a new group's exponent can be large and its published coefficient
    # A = a N0**alpha pass 1e308 in a few draws (the loss term a (N0 / N)**alpha stays finite)
    assert all(np.mean(np.isfinite(v)) > 0.99 for v in new.values())
    post = level_fit.posterior
    # the new group's level coordinate spreads around the population's by level_group_sd
    law = level_fit.model.law
    log_n0, log_d0 = np.log(level_fit.centres_["N"]), np.log(level_fit.centres_["D"])
    with np.errstate(all="ignore"):
        centred = {"E": new["E"], "A": new["A"] * np.exp(-new["alpha"] * log_n0),
                   "B": new["B"] * np.exp(-new["beta"] * log_d0), "alpha": new["alpha"], "beta": new["beta"]}
    pop = {"E": post["E_pop"].values, "A": post["A_pop"].values * np.exp(-post["alpha_pop"].values * log_n0),
           "B": post["B_pop"].values * np.exp(-post["beta_pop"].values * log_d0),
           "alpha": post["alpha_pop"].values, "beta": post["beta_pop"].values}
    with np.errstate(all="ignore"):
        x, m = to_level(law, centred)["level"], to_level(law, pop)["level"]
    ok = np.isfinite(x)
    expected = np.mean(post["level_group_sd"].values[ok] ** 2)
    # 4000 draws: the variance of the deviation within 15% (its standard error is about 3%)
    assert np.var((x - m)[ok]) == pytest.approx(expected, rel=0.15)
    pred = level_fit.predict(pd.DataFrame({"N": [1e9], "D": [2e10]}), group="new")
    assert (pred["new_run_upper"] > pred["new_run_lower"]).all()
    fitted = level_fit.predict(pd.DataFrame({"N": [1e9], "D": [2e10]}), group="g1")
    assert float(pred["new_run_upper"].iloc[0] - pred["new_run_lower"].iloc[0]) > float(
        fitted["new_run_upper"].iloc[0] - fitted["new_run_lower"].iloc[0])


def test_a_level_pooled_fit_saves_and_loads(level_fit, tmp_path):
    path = tmp_path / "level.nc"
    level_fit.save(path)
    back = bs.load(path)
    new = pd.DataFrame({"N": [1e9, 3e9], "D": [2e10, 6e10], "group": ["g0", "g2"]})
    pd.testing.assert_frame_equal(back.predict(new, random_seed=1), level_fit.predict(new, random_seed=1))


def test_runs_with_groups_get_every_parameter_partial_unless_pooling_is_given(tmp_path):
    """The default leave-one-out prefers on Porian's 15 configurations (docs/guide/groups.md); {} shares all."""
    from bayescale.fitting.model import load_spec
    from bayescale.core.specs import to_toml

    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8] * 4, "D": [2e9, 4e9, 8e9] * 4, "loss": 3.0,
                         "group": ["a"] * 6 + ["b"] * 6})
    model = bs.ScalingModel("chinchilla")
    assert model.for_runs(runs).pooling == Pooling(ALL)
    assert model.for_runs(runs.drop(columns="group")) is model and not model.pooling  # no groups: nothing pooled
    assert "runs with groups get every law parameter partial" in str(model)
    shared = bs.ScalingModel("chinchilla", pooling={})
    assert shared.for_runs(runs) is shared and not shared.for_runs(runs).pooling
    path = tmp_path / "shared.toml"
    path.write_text(to_toml(shared))  # an empty [pooling] table: shared, also after a round trip
    assert "[pooling]" in path.read_text() and not load_spec(path).for_runs(runs).pooling
    with pytest.warns(UserWarning, match="kaplan law has no level form, so every parameter is shared"):
        assert not bs.ScalingModel("kaplan").for_runs(runs).pooling
