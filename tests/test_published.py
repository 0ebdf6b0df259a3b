"""Published laws: each reproduces its paper's headline allocation from the paper's own formula, within 1%."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.base.errors import ExtrapolationWarning, SpecError
from bayescale.core.priors import LogNormal


def _chinchilla_optimum(A, B, alpha, beta, C, k=6.0):
    """Hoffmann et al. 2022, eq. 4, written out here independently of bayescale.core.allocation."""
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n = G * (C / k) ** (beta / (alpha + beta))
    return n, (C / k) / n / n


# The paper's own formula at the paper's budget: (budget, N_opt, tokens per parameter).
def _paper_headline(name):
    if name == "hoffmann2022":
        return (5.76e23, *_chinchilla_optimum(406.4, 410.7, 0.34, 0.28, 5.76e23))
    if name == "besiroglu2024":
        return (5.88e23, *_chinchilla_optimum(482.01, 2085.43, 0.3478, 0.3658, 5.88e23))
    if name == "muennighoff2023":
        return (5.88e23, *_chinchilla_optimum(520.8, 1487.7, 0.3527, 0.3527, 5.88e23))
    if name == "kaplan2020":
        c = 1e15 * 86400  # one PF-day
        n = 1.3e9 * (c / c) ** 0.73
        return c, n, c / (6 * n) / n
    if name == "deepseek2024":
        c = 3e20
        m = 0.1715 * c**0.5243
        return c, m / 6, (c / m) / (m / 6)
    if name == "llama3_2024":
        c = 3.8e25
        d = 0.29 * c**0.53
        n = c / (6 * d)
        return c, n, d / n
    raise KeyError(name)


def _allocate(entry, budget, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return entry.allocate(budget, **kw)


@pytest.mark.parametrize("name", bs.available_published())
def test_headline_allocation_within_one_percent(name):
    entry = bs.published(name)
    c, n, tpp = _paper_headline(name)
    row = _allocate(entry, c).iloc[0]
    assert entry.headline.C == c
    assert row["N_median"] == pytest.approx(n, rel=0.01)
    assert row["tokens_per_param_median"] == pytest.approx(tpp, rel=0.01)
    assert entry.headline.N == pytest.approx(n, rel=0.01)
    assert entry.headline.tokens_per_param == pytest.approx(tpp, rel=0.01)
    assert row["C"] == c and row["N_median"] * row["D_median"] * 6 == pytest.approx(c, rel=1e-9)


@pytest.mark.parametrize("name", bs.available_published())
def test_every_entry_cites_its_paper(name):
    entry = bs.published(name)
    assert "arXiv:" in entry.reference and str(entry.short[-4:]) in entry.reference
    assert entry.source and entry.headline.how
    assert "arXiv:" in type(entry).__doc__ or entry.reference  # the reference travels with the entry
    assert entry.reach.lower and entry.reach.upper


def test_printed_numbers_the_paper_states():
    # Besiroglu et al. Table 1: a = beta / (alpha + beta) = 0.5126
    p = bs.published("besiroglu2024").params
    assert p["beta"] / (p["alpha"] + p["beta"]) == pytest.approx(0.5126, abs=5e-5)
    # Kaplan et al. Fig. 14: N_opt = 1.3e9 at C_min = 1 PF-day
    assert _allocate(bs.published("kaplan2020"), 8.64e19)["N_median"].iloc[0] == pytest.approx(1.3e9, rel=1e-12)
    # DeepSeek eq. 4: D = C / M agrees with their D_opt = 5.8316 C^0.4757
    for c in (1e17, 3e20, 1e24):
        d = _allocate(bs.published("deepseek2024"), c)["D_median"].iloc[0]
        assert d == pytest.approx(5.8316 * c**0.4757, rel=1e-3)


def test_llama3_printed_headline_is_not_its_rounded_formula():
    # The report prints 402B / 16.55T at 3.8e25; its coefficients (0.53, 0.29) give 1.05e13 tokens. The entry's
    # notes say so; this keeps them true.
    entry = bs.published("llama3_2024")
    d = _allocate(entry, 3.8e25)["D_median"].iloc[0]
    assert d == pytest.approx(1.046e13, rel=0.01)
    assert abs(d / 16.55e12 - 1) > 0.3
    assert "16.55T" in entry.headline.printed and "402B" in entry.notes


def test_besiroglu_draws_match_the_reported_standard_errors():
    entry = bs.published("besiroglu2024")
    table = entry.summary()
    reported = {"E": 0.03, "A": 124.58, "B": 1293.23, "alpha": 0.02, "beta": 0.02}  # Table 1, rounded
    for k, se in reported.items():
        assert table.loc[k, "sd"] == pytest.approx(se, rel=0.3), k
    assert table.loc["A", "estimate"] == 482.01 and table.attrs["interval"] == "bootstrap percentile"
    draws = entry.draws
    a = draws["beta"] / (draws["alpha"] + draws["beta"])
    assert a.std(ddof=1) == pytest.approx(0.02, rel=0.25)
    # recentred on Table 1: the draws' medians sit near the published values (B's bootstrap is skewed: +3.7%)
    for k in ("E", "A", "B", "alpha", "beta"):
        assert np.median(draws[k]) == pytest.approx(entry.params[k], rel=0.05), k
    # the draws keep the correlation of log A with alpha that independent draws from the SEs would lose
    assert np.corrcoef(np.log(draws["A"]), draws["alpha"])[0, 1] > 0.9


def test_besiroglu_range_is_the_bundled_runs():
    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    entry = bs.published("besiroglu2024")
    assert entry.reach.lower["N"] == runs["N"].min() and entry.reach.upper["C"] == runs["C"].max()
    assert entry.runs.n_runs == 240


def test_allocate_with_draws_has_intervals_point_has_none():
    boot = _allocate(bs.published("besiroglu2024"), 1e24).iloc[0]
    assert boot["N_lower"] < boot["N_median"] < boot["N_upper"]
    assert boot["tokens_per_param_lower"] < boot["tokens_per_param_median"] < boot["tokens_per_param_upper"]
    point = _allocate(bs.published("hoffmann2022"), 1e24)
    assert point.attrs["interval"] == "point estimate"
    assert point["N_lower"].iloc[0] == point["N_median"].iloc[0] == point["N_upper"].iloc[0]


@pytest.mark.filterwarnings("ignore::bayescale.base.errors.ExtrapolationWarning")
def test_predict_is_the_law():
    entry = bs.published("hoffmann2022")
    table = entry.predict({"N": [70e9, 1e9], "D": [1.4e12, 2e10]})
    n, d = np.array([70e9, 1e9]), np.array([1.4e12, 2e10])
    expected = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    np.testing.assert_allclose(table["loss_median"], expected, rtol=1e-10)
    np.testing.assert_allclose(table["new_run_upper"], expected, rtol=1e-10)  # no published scatter
    band = bs.published("besiroglu2024").predict({"N": [70e9], "D": [1.4e12]}).iloc[0]
    assert band["curve_lower"] < band["loss_median"] < band["curve_upper"]


def test_allocation_rules_refuse_what_they_cannot_answer():
    with pytest.raises(SpecError, match="allocation rule"):
        bs.published("deepseek2024").predict({"N": [1e9], "D": [2e10]})
    with pytest.raises(SpecError, match="allocation rule"):
        bs.published("llama3_2024").as_priors(sigma=0.1)
    with pytest.raises(SpecError, match="published rule"):
        bs.published("kaplan2020").risk(1e22, target=2.5)
    with pytest.raises(SpecError, match="max_unique_tokens"):
        bs.published("llama3_2024").allocate(1e24, max_unique_tokens=1e12)
    # Kaplan predicts with its L(N, D) (eq. 1.5, Table 2)
    row = bs.published("kaplan2020").predict({"N": [1e9], "D": [2e10]}).iloc[0]
    assert row["loss_median"] == pytest.approx(((6.4e13 / 1e9) ** (0.076 / 0.103) + 1.8e13 / 2e10) ** 0.103)


def test_loss_law_risk_and_data_cap():
    entry = bs.published("besiroglu2024")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        risk = entry.risk(1e24, target=1.95)
        capped = bs.published("muennighoff2023").allocate(1e24, max_unique_tokens=1e11).iloc[0]
    assert 0.0 <= risk["p_target"].iloc[0] <= 1.0
    assert capped["D_median"] > 1e11  # repeated epochs under the cap


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(SpecError, match="valid names: besiroglu2024, deepseek2024, hoffmann2022"):
        bs.published("chinchilla")
    with pytest.raises(SpecError, match="unknown published law"):
        bs.published(None)


def test_published_table_side_by_side():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # the table holds them in `beyond`
        table = bs.published_table(budget=1e24)
    assert list(table.index) == bs.available_published()
    assert table.loc["besiroglu2024", "interval"] == "bootstrap percentile"
    assert table.loc["besiroglu2024", "N_lower"] < table.loc["besiroglu2024", "N_upper"]
    assert np.isnan(table.loc["deepseek2024", "loss_median"]) and np.isfinite(table.loc["kaplan2020", "loss_median"])
    assert (table["beyond"] > 1).all()  # 1e24 lies beyond every entry's runs
    for name in table.index:
        row = _allocate(bs.published(name), 1e24).iloc[0]
        assert table.loc[name, "N_median"] == pytest.approx(row["N_median"])
    two = bs.published_table(budget=[1e23, 1e24], names=["hoffmann2022"])
    assert two["C"].tolist() == [1e23, 1e24]


def test_as_priors_from_draws_and_from_a_point():
    priors = bs.published("besiroglu2024").as_priors(widen=2)
    assert set(priors) == {"E", "A", "B", "alpha", "beta"}
    assert all(isinstance(p, LogNormal) for p in priors.values())
    assert priors["A"].at is not None and priors["alpha"].at is None
    assert np.exp(priors["alpha"].mu) == pytest.approx(0.3478, rel=0.02)
    one = bs.published("besiroglu2024").as_priors()
    assert priors["alpha"].sigma == pytest.approx(2 * one["alpha"].sigma)
    # the term at the data centre is far tighter than A itself (A and alpha move together)
    assert one["A"].sigma < 0.5 * np.std(np.log(bs.published("besiroglu2024").draws["A"]), ddof=1)
    model = bs.ScalingModel("chinchilla", priors=priors)
    assert model.priors["beta"] is priors["beta"]
    with pytest.raises(SpecError, match="publishes no uncertainty"):
        bs.published("hoffmann2022").as_priors()
    point = bs.published("hoffmann2022").as_priors(sigma=0.1)
    assert np.exp(point["E"].mu) == pytest.approx(1.69) and point["E"].sigma == 0.1
    dc = bs.published("muennighoff2023").as_priors(sigma=0.2)
    assert {"R_D", "R_N"} <= set(dc)


def test_summary_of_a_rule():
    table = bs.published("llama3_2024").summary()
    assert table["estimate"].tolist() == [0.29, 0.53]
    assert isinstance(table, pd.DataFrame) and np.isnan(table["sd"]).all()
