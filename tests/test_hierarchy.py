"""Groups of runs: partial pooling recovers known group parameters, borrows strength, predicts new groups.

Synthetic design (the check of the issue): 8 groups with 5 to 60 runs, shared exponents and data term,
group-specific E and A drawn from a population (log E sd 0.05, log A sd 0.2), 2% noise on log loss, and a
ninth group held out. The 5-run group g0 only trained small models (N <= 1e9), the situation partial
pooling is for: alone, its E is poorly separated from its model-size term.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.base.errors import DataError, SpecError
from bayescale.analysis.hierarchy import NEW_GROUP, Pooling, group_param_draws, simulate_groups

COUNTS = [5, 60, 10, 40, 20, 8, 30, 15, 12]  # g8 (12 runs) is held out
SHARED = dict(B=2100.0, alpha=0.35, beta=0.37)
_rng = np.random.default_rng(11)
TRUE_E = np.exp(np.log(1.8) + 0.05 * _rng.standard_normal(len(COUNTS)))
TRUE_A = np.exp(np.log(480.0) + 0.2 * _rng.standard_normal(len(COUNTS)))
SIGMA = 0.02
SAMPLING = dict(draws=500, tune=500, chains=4, random_seed=1)


def _runs():
    params = dict(E=TRUE_E, A=TRUE_A, **SHARED)
    full = simulate_groups(COUNTS, params, sigma=SIGMA, seed=11)
    small = simulate_groups(COUNTS, params, sigma=SIGMA, seed=12, n_range=(10**7.5, 1e9))
    return pd.concat([small[small["group"] == "g0"], full[full["group"] != "g0"]], ignore_index=True)


@pytest.fixture(scope="session")
def grouped_runs():
    runs = _runs()
    return runs[runs["group"] != "g8"].reset_index(drop=True), runs[runs["group"] == "g8"].reset_index(drop=True)


@pytest.fixture(scope="session")
def pooled_fit(grouped_runs):
    return bs.ScalingModel("chinchilla", pooling={"E": "partial", "A": "partial"}).fit(grouped_runs[0], **SAMPLING)


@pytest.fixture(scope="session")
def independent_fit(grouped_runs):
    """Each group's E and A from its own runs alone (exponents, B and noise shared)."""
    model = bs.ScalingModel("chinchilla", pooling={"E": "independent", "A": "independent"})
    return model.fit(grouped_runs[0], **SAMPLING)


def _log_width(row):
    return float(np.log(row["upper"] / row["lower"]))


def test_pooled_fit_converges_without_divergences(pooled_fit, independent_fit):
    for fit in (pooled_fit, independent_fit):
        d = fit.diagnostics()
        assert d["divergences"] == 0
        assert d["max_r_hat"] <= 1.01 and d["min_ess_bulk"] >= 400
    assert pooled_fit.posterior["E"].dims == ("chain", "draw", "group")
    assert list(pooled_fit.posterior["group"].values) == [f"g{i}" for i in range(8)]


def test_group_parameters_are_recovered(pooled_fit):
    """The truth lies in the 90% HDI of each group's E and A and of the shared parameters.

    19 intervals at 90%: if they were independent, the number of misses would be Binomial(19, 0.1), and
    P(misses >= 5) = 3.5%; we allow 4. A broken group index or pooling misses most of them.
    """
    table = pooled_fit.group_summary(prob=0.9)
    rows = table[table["group"].str.startswith("g")]
    truth = {"E": TRUE_E, "A": TRUE_A}
    inside = [row.lower <= truth[row.parameter][int(row.group[1:])] <= row.upper for row in rows.itertuples()]
    summary = pooled_fit.summary(prob=0.9)
    inside += [summary.loc[k, "lower"] <= v <= summary.loc[k, "upper"] for k, v in SHARED.items()]
    assert len(inside) == 19
    assert sum(not x for x in inside) <= 4, rows
    # the estimates are informative: the 60-run group's E within 3% (its interval is about +-2%)
    g1 = rows[(rows["parameter"] == "E") & (rows["group"] == "g1")].iloc[0]
    assert abs(g1["estimate"] / TRUE_E[1] - 1) < 0.03


def test_small_group_borrows_strength(pooled_fit, independent_fit):
    """The 5-run group's E: a narrower interval pooled than fitted from its own runs, pulled to the population.

    The HDI widths are estimated from about 1000 effective draws (a few % Monte-Carlo error); pooling makes
    this one about 20% narrower, so we ask for at least 10%.
    """
    pooled = pooled_fit.group_summary().set_index(["parameter", "group"])
    alone = independent_fit.group_summary().set_index(["parameter", "group"])
    assert _log_width(pooled.loc[("E", "g0")]) < 0.9 * _log_width(alone.loc[("E", "g0")])
    pop = pooled.loc[("E", "(population median)"), "estimate"]
    assert abs(pooled.loc[("E", "g0"), "estimate"] - pop) < abs(alone.loc[("E", "g0"), "estimate"] - pop)
    # groups with many runs barely move (their own data dominate): within 1%
    assert pooled.loc[("E", "g1"), "estimate"] == pytest.approx(alone.loc[("E", "g1"), "estimate"], rel=0.01)


def test_held_out_group_is_covered_by_the_population_predictive(pooled_fit, grouped_runs):
    """A group the fit has not seen: the new-group 90% band covers its runs.

    The rows share one group effect, so their coverage is not independent; for a calibrated population
    predictive, all rows are covered together with probability about 0.9. We ask for >= 11 of 12 rows.
    """
    held = grouped_runs[1]
    pred = pooled_fit.predict(held.drop(columns=["loss", "group"]), prob=0.9, group=NEW_GROUP)
    assert pred["new_group"].all()
    covered = (held["loss"] >= pred["new_run_lower"]) & (held["loss"] <= pred["new_run_upper"])
    assert covered.sum() >= 11
    # the band carries the spread between groups: wider than a fitted group's band at the same inputs, yet
    # informative (population sd 0.05 on log E and 0.2 on log A give about +-10%; the prior gives far more)
    known = pooled_fit.predict(held.drop(columns=["loss", "group"]), prob=0.9, group="g1")
    width_new = (pred["new_run_upper"] - pred["new_run_lower"]) / pred["loss_median"]
    width_known = (known["new_run_upper"] - known["new_run_lower"]) / known["loss_median"]
    assert (width_new > 1.5 * width_known).all()
    assert width_new.median() < 0.4


def test_new_group_draws_follow_the_population(pooled_fit):
    """log E_new = log E_pop + sd * z: mean and variance match, and likewise the centred A term."""
    post = pooled_fit.posterior
    new = pooled_fit.param_draws(None, random_seed=5)
    log_n0 = np.log(pooled_fit.centres_["N"])
    pairs = {
        "E": (np.log(new["E"]), np.log(post["E_pop"].values), post["E_group_sd"].values),
        "A": (np.log(new["A"]) - new["alpha"] * log_n0, np.log(post["A_pop"].values) - post["alpha"].values * log_n0,
              post["A_group_sd"].values),
    }
    for name, (x, pop, sd) in pairs.items():
        expected_var = pop.var() + np.mean(sd**2)
        # 2000 draws (about 1000 effective): the mean to within 4 standard errors, the variance within 20%
        assert abs(x.mean() - pop.mean()) < 4 * np.sqrt(expected_var / 1000), name
        assert x.var() == pytest.approx(expected_var, rel=0.2), name
    # shared parameters of a new group are the posterior's own draws
    np.testing.assert_array_equal(new["alpha"], post["alpha"].values)


def test_param_draws_for_fitted_and_new_groups(pooled_fit, independent_fit):
    post = pooled_fit.posterior
    np.testing.assert_array_equal(pooled_fit.param_draws("g3")["E"], post["E"].sel(group="g3").values)
    a = pooled_fit.param_draws("mixture-x", random_seed=3)["E"]
    b = pooled_fit.param_draws("mixture-x", random_seed=3)["E"]
    c = pooled_fit.param_draws("mixture-y", random_seed=3)["E"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    both = group_param_draws(pooled_fit, ["mixture-x", "g3"], random_seed=3)
    np.testing.assert_array_equal(both["E"][..., 0], a)  # a label's draws do not depend on the others asked
    with pytest.raises(SpecError, match="'independent' across groups.*fitted groups: g0, g1"):
        independent_fit.param_draws("new")


def test_predict_mixes_fitted_and_new_groups_by_row(pooled_fit, grouped_runs):
    rows = grouped_runs[0].iloc[[0, 70, 71]].drop(columns="loss").assign(group=["g0", "g1", "brand-new"])
    pred = pooled_fit.predict(rows, random_seed=2)
    assert pred["new_group"].tolist() == [False, False, True]
    alone = pooled_fit.predict(rows.iloc[[1]].drop(columns="group"), random_seed=2, group="g1")
    assert pred["loss_median"].iloc[1] == pytest.approx(alone["loss_median"].iloc[0], rel=1e-12)
    with pytest.raises(ValueError, match="group= applies only to runs without one"):
        pooled_fit.predict(rows, group="g1")


def test_group_summary_and_plot(pooled_fit, independent_fit):
    table = pooled_fit.group_summary()
    assert list(table.columns) == ["parameter", "group", "n_runs", "estimate", "lower", "upper", "pooling",
                                   "converged"]
    assert table["converged"].all()
    e = table[table["parameter"] == "E"].set_index("group")
    assert e.loc["g1", "n_runs"] == 60 and e.loc["(population median)", "n_runs"] == sum(COUNTS[:8])
    # the new-group interval holds the between-group spread: wider than the population median's
    assert _log_width(e.loc["(new group)"]) > _log_width(e.loc["(population median)"])
    with pytest.raises(SpecError, match="no parameter 'gamma'"):
        pooled_fit.group_summary(params=["gamma"])
    fig = pooled_fit.plot_groups(compare=independent_fit, truth={"E": dict(zip([f"g{i}" for i in range(8)], TRUE_E))})
    assert [ax.get_title() for ax in fig.axes] == ["E (partial)", "A (partial)"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "g0 (5 runs)" and labels[-2:] == ["(population median)", "(new group)"]


def test_fit_without_groups_has_no_group_summary(synthetic_fit):
    with pytest.raises(SpecError, match="this fit has no groups"):
        synthetic_fit.group_summary()
    # param_draws of a fit without groups are its shared posterior
    np.testing.assert_array_equal(synthetic_fit.param_draws("anything")["E"], synthetic_fit.posterior["E"].values)


# ------------------------------------------------------------- settings only
def test_pooling_settings_are_checked():
    assert Pooling({"E": "partial", "alpha": "shared"}).to_dict() == {"E": "partial"}
    assert Pooling({"E": "partial"}) == Pooling(Pooling({"E": "partial"}))
    with pytest.raises(SpecError, match="valid choices: shared, partial, independent"):
        Pooling({"E": "pooled"})
    with pytest.raises(SpecError, match="must map parameter names"):
        Pooling(["E"])
    with pytest.raises(SpecError, match="the law has no parameter 'gamma'"):
        bs.ScalingModel("chinchilla", pooling={"gamma": "partial"})
    with pytest.raises(SpecError, match="set the prior of 'E' instead of 'E_pop'"):
        bs.ScalingModel("chinchilla", pooling={"E": "partial"}, priors={"E_pop": bs.priors.LogNormal(0, 1)})
    m = bs.ScalingModel("chinchilla", pooling={"E": "partial"}, priors={"E_group_sd": bs.priors.HalfNormal(0.1)})
    assert m.hyper_names == ("E_pop", "E_group_sd")
    assert m.varying_names == ("E",)
    # a coefficient whose exponent varies by group varies with it
    assert bs.ScalingModel("chinchilla", pooling={"alpha": "partial"}).varying_names == ("A", "alpha")


def test_grouped_model_needs_a_group_column():
    runs = simulate_groups([12], dict(E=1.8, A=480.0, **SHARED)).drop(columns="group")
    with pytest.raises(DataError, match="missing required column 'group'"):
        bs.ScalingModel("chinchilla", pooling={"E": "partial"}).fit(runs)


def test_simulate_groups_checks_its_arguments():
    with pytest.raises(SpecError, match="has 2 values for 3 groups"):
        simulate_groups([5, 5, 5], dict(E=[1.8, 1.9], A=480.0, **SHARED))
    with pytest.raises(SpecError, match="2 labels for 3 groups"):
        simulate_groups([5, 5, 5], dict(E=1.8, A=480.0, **SHARED), labels=["a", "b"])
    with pytest.raises(SpecError, match="laws needing U"):
        simulate_groups([5], dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37, R_D=15.0, R_N=5.0),
                        law="data_constrained")
    runs = simulate_groups([4, 6], dict(E=[1.7, 2.0], A=480.0, **SHARED), n_range=(1e8, 1e9), sigma=0.0)
    assert runs["N"].between(1e8, 1e9).all()
    law = bs.get_law("chinchilla")
    g1 = runs[runs["group"] == "g1"]
    np.testing.assert_allclose(g1["loss"], law.loss({"N": g1["N"], "D": g1["D"]}, dict(E=2.0, A=480.0, **SHARED)))


def test_recommend_runs_values_a_run_by_what_its_group_lacks(pooled_fit):
    """The same large run narrows g0's N_opt interval (5 runs, all below 1e9 parameters: its A barely known) far
    more than g5's (8 runs up to 2e10): a run is worth what its group does not yet know (measured: 17% against
    1%). Without group= or with an unfitted one, a clear error lists the fitted groups."""
    candidate = pd.DataFrame({"N": [1e10], "D": [2e11]})
    shrink = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        for g in ("g0", "g5"):
            table = pooled_fit.recommend_runs(candidate, budget=1e22, group=g, random_seed=1)
            assert table.attrs["group"] == g and bool(table["reliable"].iat[0])
            shrink[g] = float(table["shrinkage_fraction"].iat[0])
    assert shrink["g0"] > 0.08 and shrink["g0"] > 4 * max(shrink["g5"], 0.0), shrink
    with pytest.raises(ValueError, match="needs group=.*valid: 'g0', 'g1'"):
        pooled_fit.recommend_runs(candidate, budget=1e22)
    with pytest.raises(ValueError, match="got group='g8'"):
        pooled_fit.recommend_runs(candidate, budget=1e22, group="g8")


def test_model_average_answers_for_a_group(pooled_fit, independent_fit):
    """A mixture of two grouped fits answers for one group: all the weight on one fit reproduces that fit's
    table for the group; half and half puts the group's N_opt between the two fits'."""
    fits = {"pooled": pooled_fit, "independent": independent_fit}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        alone = pooled_fit.allocate(1e22, group="g0")
        one = bs.average(fits, weights={"pooled": 1.0, "independent": 0.0}).allocate(1e22, group="g0")
        half = bs.average(fits, weights={"pooled": 0.5, "independent": 0.5}, random_seed=1).allocate(1e22, group="g0")
        other = independent_fit.allocate(1e22, group="g0")
    for col in ("N_lower", "N_upper", "loss_median", "loss_lower", "loss_upper"):
        assert one[col].iat[0] == pytest.approx(alone[col].iat[0], rel=1e-12), col
    lo, hi = sorted([alone["loss_median"].iat[0], other["loss_median"].iat[0]])
    assert lo <= half["loss_median"].iat[0] <= hi
