"""Held-out draws of one real split, and the ladder tables they come from."""

import numpy as np
import pandas as pd
import pytest

from bayescale.corpus import bundled_ladders, load_corpus
from bayescale.errors import DataError
from bayescale.holdout import collect, empirical_optimum, holdout_draws, ladder_splits


def test_bundled_ladders_keep_their_sources_and_evidence():
    frame = bundled_ladders()
    assert frame.groupby("source")["ladder"].nunique().to_dict() == {
        "hoffmann2022": 1, "muennighoff2023": 1, "porian2024": 15}
    # Porian configurations that are the same trainings under another N convention share their evidence
    por = frame[frame["source"] == "porian2024"]
    assert por["evidence"].nunique() < por["ladder"].nunique()
    assert frame["U"].notna().sum() == 295 and np.all(frame[["N", "D", "C", "loss"]] > 0)


def test_a_missing_corpus_is_empty_and_a_broken_one_names_its_row(tmp_path):
    assert load_corpus(tmp_path).empty
    pd.DataFrame({"source": ["a", "a"], "ladder": ["a/1", "a/1"], "N": [1e8, -1.0], "D": [1e9, 1e9],
                  "loss": [3.0, 2.9]}).to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(DataError, match="row 3 column N is -1.0; expected a positive number"):
        load_corpus(tmp_path)


def test_splits_fit_below_the_cut_and_score_above():
    splits = ladder_splits(bundled_ladders())
    assert {s.source for s in splits} == {"hoffmann2022", "muennighoff2023", "porian2024"}
    for s in splits:
        assert s.train["C"].max() < s.cut <= s.test["C"].min()
        assert len(s.train) >= 7
    assert {s.law for s in splits if s.source == "muennighoff2023"} == {"data_constrained"}


def test_empirical_optimum_is_the_parabola_vertex_or_none():
    n = np.logspace(7, 9, 7)
    level = pd.DataFrame({"N": n, "loss": np.exp(0.05 * (np.log10(n) - 8.2) ** 2 + 1.0)})
    assert empirical_optimum(level) == pytest.approx(8.2, abs=1e-9)
    assert empirical_optimum(level.iloc[:3]) is None  # too few sizes
    assert empirical_optimum(level.assign(loss=np.exp(-(np.log10(n) - 8.2) ** 2))) is None  # a maximum


def test_holdout_draws_of_a_chinchilla_split(tmp_path):
    split = next(s for s in ladder_splits(bundled_ladders()) if s.name == "hoffmann2022/chinchilla@C<1e+21")
    ds = collect([split], tmp_path)[0]
    assert ds.sizes["run"] == len(split.test) == 23 and ds.sizes["sample"] == 1000
    assert np.all(ds["beyond"] > 0) and ds.attrs["source"] == "hoffmann2022"
    # the form-known curve draws lie near the held-out runs: errors of a few percent, not tens
    err = np.median(ds["log_curve"].values, axis=0) - ds["observed"].values
    assert np.all(np.abs(err) < 0.06)
    assert 0.001 < ds.attrs["residual_scale"] < 0.01 and 0.1 < ds.attrs["reducible_fraction"] < 0.6
    # written as it finished, read back on the next call without fitting
    again = collect([split], tmp_path)[0]
    np.testing.assert_array_equal(again["log_curve"].values, ds["log_curve"].values)
