"""Budget risk: predictive bands of planned runs, P(loss <= target), compute for a target, rendering."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.analysis.rendering import humanize, to_html, to_markdown, to_text


@pytest.fixture(scope="module")
def table(chinchilla_fit):
    return chinchilla_fit.risk([1e23, 1e24], target=1.95, plan=["70B:1.4T", (10e9, 10e12)])


def test_risk_rows_and_columns(table):
    assert table["kind"].tolist() == ["compute-optimal"] * 2 + ["plan"] * 2
    assert table["label"].iloc[2] == "70B params on 1.4T tokens"
    np.testing.assert_allclose(table["C"], 6 * table["N"] * table["D"], rtol=1e-12)
    np.testing.assert_allclose(table["C"].iloc[:2], [1e23, 1e24], rtol=1e-12)
    assert table.attrs["prob"] == 0.9 and table.attrs["target"] == 1.95
    for col in ("loss_median", "curve_lower", "new_run_upper", "p_target", "penalty_median", "converged"):
        assert col in table
    # The new-run band contains the curve band (it adds run-to-run noise). Beyond the runs the form uncertainty
    # dominates both and the noise adds little, so the ends are compared with Monte Carlo slack (4000 draws).
    slack = 2e-3
    assert np.all(table["new_run_lower"] < table["curve_lower"] * (1 + slack))
    assert np.all(table["new_run_upper"] > table["curve_upper"] * (1 - slack))
    assert np.all(table["curve_lower"] < table["loss_median"]) and np.all(table["loss_median"] < table["curve_upper"])


def test_plans_are_predicted_exactly_as_predict_does(chinchilla_fit, table):
    # risk reuses predict_draws: same plan, same seed -> the same median and bands as fit.predict.
    plans = table[table["kind"] == "plan"]
    pred = chinchilla_fit.predict({"N": plans["N"].to_numpy(), "D": plans["D"].to_numpy()})
    alone = chinchilla_fit.risk(plan=["70B:1.4T", (10e9, 10e12)], target=1.95)
    for col in ("loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"):
        np.testing.assert_allclose(alone[col].to_numpy(), pred[col].to_numpy(), rtol=1e-12)


def test_penalty_is_zero_at_the_optimum_and_positive_off_it(table):
    # The compute-optimal rows use the posterior-median optimum: only allocation uncertainty costs
    # loss there (well below 1e-3); 10B params on 10T tokens (1000 tokens/param) is far off the optimum.
    assert np.all(table["penalty_lower"] >= -1e-12)
    assert np.all(table["penalty_median"].iloc[:3] < 1e-3)
    off = table.iloc[3]
    assert off["penalty_lower"] > 0.01
    # Its loss equals the optimum's at the same compute plus the penalty (medians: within the spread).
    assert off["loss_median"] > table["loss_median"].iloc[1] - 0.05


def test_p_target_follows_the_new_run_distribution(chinchilla_fit):
    budgets = [1e23, 1e24, 1e25, 1e26]
    low = chinchilla_fit.risk(budgets, target=1.9)
    high = chinchilla_fit.risk(budgets, target=1.95)
    assert np.all((0 <= low["p_target"]) & (low["p_target"] <= 1))
    assert np.all(np.diff(low["p_target"]) >= 0)          # more compute, more likely
    assert np.all(high["p_target"] >= low["p_target"])     # easier target, more likely
    # A target at the new-run band's upper end is reached with probability ~ (1 + prob) / 2 = 0.95
    # (Monte Carlo error with 4000 draws: sd ~0.004).
    at_edge = chinchilla_fit.risk(1e24, target=float(low["new_run_upper"].iloc[1]))
    assert at_edge["p_target"].iloc[0] == pytest.approx(0.95, abs=0.01)


def test_budget_for_is_consistent_with_risk(chinchilla_fit):
    out = chinchilla_fit.budget_for([1.95, 1.9], prob=0.9)
    assert out["status"].tolist() == ["ok", "ok"]
    assert np.all(out["C_median_case"] < out["C"])                 # 50% needs less than 90%
    assert out["C"].iloc[1] > out["C"].iloc[0]                     # lower target, more compute
    c = float(out["C"].iloc[1])
    # budget_for holds each draw's run noise fixed as risk draws it for a one-row table (same seed),
    # so the probability at the returned compute is prob, and just below it is less.
    at = chinchilla_fit.risk(c, target=1.9)["p_target"].iloc[0]
    below = chinchilla_fit.risk(c * 0.999, target=1.9)["p_target"].iloc[0]
    assert 0.9 <= at < 0.9 + 0.01
    assert below < 0.9
    med = chinchilla_fit.risk(float(out["C_median_case"].iloc[1]), target=1.9)["p_target"].iloc[0]
    assert med == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(6 * out["N"] * out["D"], out["C"], rtol=1e-12)


def test_budget_for_an_unreachable_target(chinchilla_fit):
    floor = float(chinchilla_fit.posterior["E"].min())
    out = chinchilla_fit.budget_for(floor * 0.9)  # below every draw's irreducible loss
    assert np.isinf(out["C"].iloc[0]) and out["status"].iloc[0].startswith("below the irreducible loss E \u2248 1.8")
    reachable_e = chinchilla_fit.budget_for(2.0, max_compute=1e22)  # above E, but beyond the compute searched
    assert np.isinf(reachable_e["C"].iloc[0]) and reachable_e["status"].iloc[0].startswith("not reached")


def test_risk_with_a_data_cap(chinchilla_fit):
    free = chinchilla_fit.risk(1e26)
    capped = chinchilla_fit.risk(1e26, max_unique_tokens=2e12)
    assert capped["D"].iloc[0] == pytest.approx(2e12)
    assert capped["loss_median"].iloc[0] > free["loss_median"].iloc[0]


def test_risk_rejects_bad_arguments(chinchilla_fit):
    with pytest.raises(ValueError, match="at least one budget"):
        chinchilla_fit.risk()
    with pytest.raises(ValueError, match="PARAMS:TOKENS"):
        chinchilla_fit.risk(plan="70B")
    with pytest.raises(ValueError, match="target loss"):
        chinchilla_fit.risk(1e24, target="low")


def test_markdown_and_html_use_human_units(table):
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0].startswith("| row | plan | compute |")
    assert lines[1] == "|" + "---|" * (lines[0].count("|") - 1)
    assert sum(line.startswith("| ") for line in lines) == 1 + len(table)
    assert "| 70B params on 1.4T tokens | 5.88e23 FLOP | 70B | 1.4T |" in md
    assert "P(loss <= 1.95)" in md and "90% posterior ETI intervals" in md
    html = to_html(table)
    assert html.count("<tr") == 1 + len(table) and "<td>1e24 FLOP</td>" in html
    assert "70B" in to_text(table)


def test_rendering_flags_unconverged_fits_and_escapes():
    t = pd.DataFrame({"C": [1e24], "label": ["a|b <i>"], "N_median": [7e10], "N_lower": [6e10],
                      "N_upper": [8e10], "converged": [False]})
    t.attrs["prob"] = 0.5
    h = humanize(t)
    assert h.columns.tolist() == ["compute", "plan", "params (50%)", "converged"]
    assert h.iloc[0].tolist() == ["1e24 FLOP", "a|b <i>", "70B [60B, 80B]", "NO"]
    md = to_markdown(t)
    assert r"a\|b" in md and "did not converge" in md
    assert "&lt;i&gt;" in to_html(t)


# ------------------------------------------------------------------ groups
@pytest.fixture(scope="module")
def grouped_fit():
    """Three groups differing only in E (1.7, 1.85, 2.0); every other parameter shared."""
    from bayescale.analysis.hierarchy import simulate_groups

    runs = simulate_groups([40, 40, 40], dict(E=[1.7, 1.85, 2.0], A=480.0, B=2100.0, alpha=0.35, beta=0.37),
                           sigma=0.01, seed=4)
    return bs.ScalingModel("chinchilla", pooling={"E": "partial"}).fit(runs, random_seed=5)


def test_allocation_and_risk_per_group(grouped_fit):
    assert grouped_fit.converged, grouped_fit.diagnostics()
    table = grouped_fit.allocate(1e24, group=["g0", "g1", "g2", "new"])
    assert list(table["group"]) == ["g0", "g1", "g2", "new"] and table["converged"].all()
    # E does not enter the optimal N (closed form), and the shared draws are the same for every group.
    assert np.ptp(table["N_median"]) == pytest.approx(0, abs=1e-6 * table["N_median"].iloc[0])
    # The loss at the optimum moves with each group's E (true gaps 0.15), within a few posterior sds.
    gaps = np.diff(table["loss_median"].iloc[:3])
    assert np.allclose(gaps, 0.15, atol=0.03), gaps
    # A new group carries the population's spread of E: a much wider interval than any fitted group.
    width = table["loss_upper"] - table["loss_lower"]
    assert width.iloc[3] > 3 * width.iloc[:3].max()


def test_risk_of_a_group_plan_matches_its_prediction(grouped_fit):
    risk = grouped_fit.risk(plan="70B:1.4T", target=1.9, group="g1", random_seed=0)
    pred = grouped_fit.predict({"N": [70e9], "D": [1.4e12]}, group="g1", random_seed=0)
    assert risk["group"].iloc[0] == "g1"
    for col in ("loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"):
        assert risk[col].iloc[0] == pytest.approx(pred[col].iloc[0], rel=1e-12)
    need = grouped_fit.budget_for(2.0, group="g0")
    assert need["group"].iloc[0] == "g0" and need["status"].iloc[0] == "ok"
    # the same target is harder for the group with the higher irreducible loss
    assert grouped_fit.budget_for(2.1, group="g2")["C"].iloc[0] > grouped_fit.budget_for(2.1, group="g0")["C"].iloc[0]


# ------------------------------------------------------------------ nothing silent
def test_non_finite_draws_give_a_named_warning_and_no_probability(chinchilla_fit):
    """Ten draws whose A overflowed (as a fit to losses near 1e300 gives): P(loss <= target) is not computed over
    them, budget_for says why it has no answer, and each table's warning names the columns, rows and reason."""
    tree = chinchilla_fit.idata.copy(deep=True)
    tree["posterior/A"].values[0, :10] = np.inf
    broken = bs.ScalingFit(chinchilla_fit.model, chinchilla_fit.runs, tree, chinchilla_fit.priors_,
                           chinchilla_fit.centres_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        with pytest.warns(bs.DegenerateResultWarning, match=r"risk: not finite: .*p_target.* at C = 1e\+22; "
                                                            r"C = 5\.88e\+23 \(A is not finite in 10 of 4000 draws\)"):
            table = broken.risk(1e22, target=2.0, plan="70B:1.4T")
        assert table["p_target"].isna().all()
        np.testing.assert_allclose(6 * table["N"] * table["D"], table["C"], rtol=1e-12)  # the plan itself is fine
        with pytest.warns(bs.DegenerateResultWarning, match=r"budget_for: not finite: C, .* at target = 2 "
                                                            r"\(not computed: .*A is not finite in 10 of 4000"):
            need = broken.budget_for(2.0)
    assert need["status"].iloc[0].startswith("not computed") and np.isnan(need["C"].iloc[0])


def test_finite_risk_tables_are_silent(chinchilla_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DegenerateResultWarning)
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        chinchilla_fit.risk([1e21, 1e23], target=1.95, plan="70B:1.4T")
        chinchilla_fit.budget_for(1.95)


def test_budget_for_reports_its_monte_carlo_error(chinchilla_fit):
    """Answers with other noise seeds agree within a few of the reported Monte Carlo standard errors.

    The MCSE counts the posterior draws' autocorrelation (ESS) as well as the noise draws a seed changes, so
    it bounds the seed-to-seed spread from above; 4 sqrt(2) MCSE either side is about 5.7 sd of a difference.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        tables = [chinchilla_fit.budget_for([1.95, 1.9], prob=0.9, random_seed=s) for s in range(4)]
    base = tables[0]
    mcse = base["C_mcse_decades"].to_numpy()
    assert np.all(mcse > 0) and np.all(mcse < 0.5)
    for other in tables[1:]:
        gap = np.abs(np.log10(other["C"].to_numpy() / base["C"].to_numpy()))
        assert np.all(gap <= 4 * np.sqrt(2) * mcse)
    assert base["beyond_checked"].dtype == bool
    assert (base["beyond_checked"] == (base["beyond"] > 2.0)).all()
