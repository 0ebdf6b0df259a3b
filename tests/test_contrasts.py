"""Contrasts between groups: the planted compute multiplier is recovered; a moved exponent is found."""

import numpy as np
import pytest

import bayescale as bs
from bayescale.analysis.contrasts import _crossing, contrast, contrast_draws, contrast_params
from bayescale.base.errors import SpecError
from bayescale.core.allocation import optimal_allocation
from bayescale.core.laws import get_law
from conftest import LEVEL_GROUPS


def test_crossing_interpolates_in_log_compute():
    offsets = np.arange(-2.0, 2.0001, 0.5)
    frontier = 3.0 - 0.5 * offsets  # decreasing in log compute
    out = _crossing(np.tile(frontier, (3, 1)), np.array([3.25, 10.0, 0.0]), offsets)
    # 3.25 is met half a decade below the budget (other needs 10**-0.5 C: a multiplier 10**0.5); 10 is met
    # below the smallest compute searched (inf); 0 never (a multiplier of 0)
    np.testing.assert_allclose(out, [10 ** 0.5, np.inf, 0.0])


def _true_multiplier(reference, other, budget):
    """The compute multiplier of the planted laws: `other`'s frontier against `reference`'s loss at `budget`."""
    law = get_law("chinchilla")
    truth = [{k: np.array([v[g]]) for k, v in LEVEL_GROUPS.items()} for g in (reference, other)]
    target = optimal_allocation(law, truth[0], np.array([budget]))["loss"][:, 0]  # (draw,)
    offsets = np.arange(-6.0, 6.0001, 0.001)
    frontier = optimal_allocation(law, truth[1], budget * 10.0 ** offsets)["loss"]
    return float(_crossing(frontier, target, offsets)[0])  # frontier (draw, grid)


def test_contrast_recovers_the_planted_compute_multiplier(grouped_level_fit):
    """g1 against g0: the planted multiplier (7.2 at 1e19, 11.8 at 1e21) inside the 90% interval.

    One fixed-seed fit; measured intervals [5.5, 8.4] and [9.0, 13.0], so the truth sits 10-16% inside
    the nearer end, several times the Monte Carlo error of a 4000-draw 5% quantile. The planted values
    are computed from the true laws on a grid 25 times finer than the one contrast searches. (The
    0.5%-noise pair g0-g2 gives 1-5% intervals that hold the truth to 1e20 and miss it by 1-3% above,
    at g0's largest runs, where pooling pulls the two exponents together.)
    """
    budgets = [1e19, 1e21]
    t = contrast(grouped_level_fit, "g0", "g1", budgets)
    assert list(t.columns[:3]) == ["C", "reference", "other"]
    for row, budget in zip(t.itertuples(), budgets):
        truth = _true_multiplier(0, 1, budget)
        assert row.compute_multiplier_lower <= truth <= row.compute_multiplier_upper, (truth, t)
        assert row.prob_other_better > 0.95 and row.loss_difference_median < 0
    # the same pair the other way round: the multiplier inverts (medians on either side of 1)
    back = contrast(grouped_level_fit, "g1", "g0", budgets[0])
    assert (back["compute_multiplier_median"].iloc[0] < 1) == (t["compute_multiplier_median"].iloc[0] > 1)
    assert t.attrs["interval"] == "posterior ETI"


def test_contrast_params_tell_moved_exponents_from_moved_coefficients(grouped_level_fit):
    """alpha 0.25 against 0.45 (g0, g2) is a moved exponent; P(alpha_g0 < alpha_g2) > 0.95 in test_pooling."""
    apart = contrast_params(grouped_level_fit, "g0", "g2").set_index("parameter")
    assert apart.loc["alpha", "moved"] and apart.loc["alpha", "ratio_median"] > 1


def test_contrast_draws_are_shaped_by_budget(grouped_level_fit):
    d = contrast_draws(grouped_level_fit, "g0", "g1", [1e19, 1e21, 1e23])
    assert d["compute_multiplier"].shape == (4, 1000, 3)
    np.testing.assert_allclose(d["loss_difference"], d["loss_other"] - d["loss_reference"])


def test_contrast_names_bad_groups(grouped_level_fit, synthetic_fit):
    with pytest.raises(SpecError, match="fitted groups: g0, g1, g2"):
        contrast(grouped_level_fit, "g0", "g9", 1e20)
    with pytest.raises(SpecError, match="same group"):
        contrast(grouped_level_fit, "g1", "g1", 1e20)
    with pytest.raises(SpecError, match="needs a fit with groups"):
        contrast(synthetic_fit, "a", "b", 1e20)


def test_one_frontier_grid_gives_the_multiplier_of_a_search_per_budget(grouped_level_fit):
    """The other group's frontier is computed once for all budgets; each budget's answer is its own search's."""
    budgets = [1e18, 3e20, 1e23]
    together = contrast_draws(grouped_level_fit, "g0", "g2", budgets)["compute_multiplier"]
    for j, c in enumerate(budgets):
        alone = contrast_draws(grouped_level_fit, "g0", "g2", c)["compute_multiplier"][..., 0]
        ok = np.isfinite(alone) & (alone > 0)
        # the two grids are offset by under one step of 0.025 decades; interpolation between steps differs by
        # far less than a percent (measured: at most 3e-5 in log)
        np.testing.assert_allclose(together[..., j][ok], alone[ok], rtol=1e-3)
        np.testing.assert_array_equal(together[..., j][~ok], alone[~ok])


def test_plot_contrast_draws_every_other_group(grouped_level_fit):
    fig = bs.plot_contrast(grouped_level_fit, "g0", budget=[1e21])
    upper, lower = fig.axes[:2]
    assert [t.get_text() for t in upper.get_legend().get_texts()][-2:] == ["g1 vs g0", "g2 vs g0"]
    assert upper.get_yscale() == "log" and lower.get_ylabel() == "loss difference"
    one = bs.plot_contrast(grouped_level_fit, "g1", other="g2")
    assert [t.get_text() for t in one.axes[0].get_legend().get_texts()][-1:] == ["g2 vs g1"]
    with pytest.raises(SpecError, match="fitted groups: g0, g1, g2"):
        bs.plot_contrast(grouped_level_fit, "g0", other="g7")


def test_report_of_a_fit_with_groups_compares_them(grouped_level_fit, synthetic_fit, tmp_path):
    text = grouped_level_fit.report(tmp_path / "r.md", budget=[1e21], reference="g1", next_run=False)
    section = text[text.index("## Groups compared with g1"):]
    section = section[:section.index("\n## ", 5)]
    rows = [line for line in section.splitlines() if line.startswith("| g") and not line.startswith("| group")]
    assert [r.split("|")[1].strip() for r in rows] == ["g0", "g2"]
    assert "moved" in section and "![" in section
    with pytest.raises(ValueError, match="not a fitted group; fitted groups: g0, g1, g2"):
        grouped_level_fit.report(tmp_path / "x.md", reference="g5")
    with pytest.raises(ValueError, match="this fit has no groups"):
        synthetic_fit.report(tmp_path / "y.md", reference="g1")
