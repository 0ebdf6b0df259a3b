"""Extrapolation distance: the fitted range, decades beyond it, and the tables' columns and warnings."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.core.extrapolation import WARN_DECADES, Reach, annotate, decades_beyond, warn_extrapolation

BEYOND = ["beyond_C", "beyond_N", "beyond_D", "beyond"]


@pytest.fixture
def no_extrapolation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.ExtrapolationWarning)
        yield


# ------------------------------------------------------------------ Reach and decades_beyond
def test_reach_of_the_chinchilla_runs(chinchilla_runs):
    reach = Reach.from_frame(chinchilla_runs)
    assert reach.upper["C"] == chinchilla_runs["C"].max() and reach.lower["N"] == chinchilla_runs["N"].min()
    lo, hi = reach.tokens_per_param
    assert 0.4 < lo < 0.5 and 300 < hi < 400


def test_decades_beyond_both_edges_and_inside():
    reach = Reach({"C": 1e18, "N": 1e7}, {"C": 1e21, "N": 1e9})
    out = decades_beyond(reach, {"C": [1e20, 1e24, 1e16], "N": [1e9, 1e8, 1e6]})
    np.testing.assert_allclose(out["beyond_C"], [0, 3, 2])
    np.testing.assert_allclose(out["beyond_N"], [0, 0, 1])
    np.testing.assert_allclose(out["beyond"], [0, 3, 2])
    assert "beyond_D" not in out  # the reach has no D


def test_decades_beyond_non_finite_is_nan():
    reach = Reach({"C": 1e18}, {"C": 1e21})
    out = decades_beyond(reach, {"C": [np.inf, np.nan, 1e22]})
    assert np.isnan(out["beyond_C"][:2]).all() and out["beyond_C"][2] == pytest.approx(1.0)


def test_annotate_derives_C_from_N_and_D():
    reach = Reach({"C": 1e18, "N": 1e7, "D": 1e9}, {"C": 1e21, "N": 1e9, "D": 1e11}, (1.0, 100.0))
    frame = pd.DataFrame({"N": [1e9], "D": [1e13]})  # C = 6e22: 1.78 decades of compute beyond
    with pytest.warns(bs.ExtrapolationWarning, match=r"2\.0 decades of tokens beyond the largest fitted run"):
        annotate(frame, reach, what="t")
    assert frame["beyond_C"].iloc[0] == pytest.approx(np.log10(6e22 / 1e21))
    assert frame["beyond_D"].iloc[0] == pytest.approx(2.0)


def test_threshold_is_one_decade(no_extrapolation_warning):
    reach = Reach({"C": 1e18}, {"C": 1e21})
    assert WARN_DECADES == 1.0
    annotate(pd.DataFrame({"C": [0.99e22]}), reach)  # just inside: no warning
    with pytest.warns(bs.ExtrapolationWarning, match="1.0 decades of compute"):
        warnings.simplefilter("always", bs.ExtrapolationWarning)
        annotate(pd.DataFrame({"C": [1.01e22]}), reach)


def test_below_the_smallest_run_says_so():
    reach = Reach({"N": 1e7}, {"N": 1e9})
    with pytest.warns(bs.ExtrapolationWarning, match=r"3\.0 decades of parameters below the smallest fitted run "
                                                      r"\(10M parameters\)"):
        annotate(pd.DataFrame({"N": [1e4]}), reach)


def test_one_warning_per_table_with_the_farthest_row():
    reach = Reach({"C": 1e18}, {"C": 1e21})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        annotate(pd.DataFrame({"C": [1e23, 1e25, 1e20]}), reach, what="fit.predict")
    assert len(caught) == 1
    text = str(caught[0].message)
    assert text.startswith("fit.predict: 2 of 3 rows") and "4.0 decades of compute" in text


# ------------------------------------------------------------------ tables of a Bayesian fit
def test_predict_far_beyond_warns(chinchilla_fit):
    with pytest.warns(bs.ExtrapolationWarning) as caught:
        table = chinchilla_fit.predict({"N": [1e14], "C": [6e30]})
    text = str(caught[0].message)
    assert "8.7 decades of compute beyond the largest fitted run (1.3e22 FLOP)" in text
    assert "bands include form uncertainty, scored out of sample to ~2 decades" in text
    assert table["beyond"].iloc[0] == pytest.approx(np.log10(6e30 / chinchilla_fit.runs.frame["C"].max()))
    assert table["beyond_N"].iloc[0] > 3


def test_predict_in_range_is_silent(chinchilla_fit, chinchilla_runs, no_extrapolation_warning):
    table = chinchilla_fit.predict(chinchilla_runs.iloc[::40][["N", "D"]])
    assert set(BEYOND) <= set(table.columns)
    assert (table["beyond"] == 0).all()
    assert table.columns.tolist()[-4:] == BEYOND


def test_allocate_columns_in_range(chinchilla_fit, no_extrapolation_warning):
    table = chinchilla_fit.allocate([1e20, 1e22])
    assert set(BEYOND + ["tokens_per_param_outside"]) <= set(table.columns)
    assert (table["beyond"] < WARN_DECADES).all() and not table["tokens_per_param_outside"].any()


def test_allocate_under_a_token_cap_flags_tokens_per_param(chinchilla_fit):
    with pytest.warns(bs.ExtrapolationWarning) as caught:
        table = chinchilla_fit.allocate([1e22, 1e26], max_unique_tokens=2e12)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "the plan at 1e26 FLOP uses 0.24 tokens per parameter while the fitted runs span 0.456-341" in text
    assert "decades of compute beyond the largest fitted run" in text
    assert table["tokens_per_param_outside"].tolist() == [False, True]
    assert table["beyond_C"].iloc[1] == pytest.approx(np.log10(1e26 / chinchilla_fit.runs.frame["C"].max()))


def test_risk_and_budget_for_carry_the_distance(chinchilla_fit):
    with pytest.warns(bs.ExtrapolationWarning, match="risk: 2 of 2 rows"):
        table = chinchilla_fit.risk(1e25, plan="70B:1.4T")
    assert set(BEYOND + ["tokens_per_param_outside"]) <= set(table.columns)
    assert (table["beyond"] > WARN_DECADES).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        need = chinchilla_fit.budget_for([2.3, 1.0], prob=0.9)
    assert set(BEYOND + ["tokens_per_param", "tokens_per_param_outside"]) <= set(need.columns)
    assert need["beyond"].iloc[0] < WARN_DECADES and np.isnan(need["beyond"].iloc[1])  # C = inf: no distance


def test_risk_in_range_is_silent(chinchilla_fit, no_extrapolation_warning):
    table = chinchilla_fit.risk(1e21, plan=(1e9, 2e10))
    assert (table["beyond"] == 0).all() and not table["tokens_per_param_outside"].any()


def test_warn_extrapolation_on_a_combined_table():
    reach = Reach({"C": 1e18, "N": 1e7, "D": 1e9}, {"C": 1e21, "N": 1e9, "D": 1e11}, (1.0, 100.0))
    frame = annotate(pd.DataFrame({"N": [1e8, 1e8], "D": [1e9, 1e11], "tpp": [10.0, 1000.0]}), reach,
                     tokens_per_param="tpp", warn=False)
    assert frame["tokens_per_param_outside"].tolist() == [False, True]
    with pytest.warns(bs.ExtrapolationWarning, match=r"uses 1e\+03 tokens per parameter while the fitted runs "
                                                      r"span 1-100 \(1 of 2 rows outside\)"):
        warn_extrapolation(frame, reach, what="", tokens_per_param="tpp")


# ------------------------------------------------------------------ point fits
def test_point_fit_tables_carry_the_distance(chinchilla_runs):
    a3 = bs.Approach3().fit(chinchilla_runs)
    with pytest.warns(bs.ExtrapolationWarning, match="decades of compute beyond"):
        pred = a3.predict({"N": [1e14], "C": [6e30]})
    assert pred["beyond"].iloc[0] > 8
    with pytest.warns(bs.ExtrapolationWarning, match="0.24 tokens per parameter"):
        alloc = a3.allocate([1e26], max_unique_tokens=2e12)
    assert alloc["tokens_per_param_outside"].iloc[0]
