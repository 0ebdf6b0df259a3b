"""Tests of the bundled datasets in bayescale.datasets."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import bayescale.datasets
from bayescale.data import load_runs
from bayescale.datasets import load_chinchilla, load_datablations, references


def test_chinchilla_shape_and_columns():
    df = load_chinchilla()
    assert len(df) == 245
    assert list(df.columns) == ["N", "C", "D", "loss", "dropped_in_replication"]
    assert "Besiroglu" in df.attrs["source"] and "92258837" in df.attrs["source"]


def test_chinchilla_known_values():
    df = load_chinchilla()
    assert df["N"].iloc[0] == 6795600349.289497
    assert df["C"].iloc[0] == 9.993852799709755e18
    assert df["loss"].iloc[0] == 5.005581996196243
    np.testing.assert_array_equal(df["D"], df["C"] / (6 * df["N"]))


def test_chinchilla_five_highest_losses_flagged():
    df = load_chinchilla()
    flagged = df["dropped_in_replication"]
    assert flagged.dtype == bool and flagged.sum() == 5
    assert df.loc[flagged, "loss"].min() > df.loc[~flagged, "loss"].max()
    assert sorted(df.index[flagged]) == [0, 1, 2, 3, 4]


def test_chinchilla_drop_outliers():
    kept = load_chinchilla(drop_outliers=True)
    assert len(kept) == 240 and not kept["dropped_in_replication"].any()
    assert kept.index[0] == 5  # original row numbers
    assert kept.attrs["source"]


def test_datablations_shape_and_columns():
    df = load_datablations()
    assert len(df) == 296
    assert list(df.columns) == ["name", "N", "D", "U", "loss", "misparsed"]
    first = df.iloc[0]
    assert (first["name"], first["N"], first["D"], first["U"], first["loss"]) == (
        "2b84b4b", 2.81e9, 4e9, 4e9, 3.265024)
    assert "Muennighoff" in df.attrs["source"]


def test_datablations_misparsed_row():
    df = load_datablations()
    assert df["misparsed"].sum() == 1
    row = df[df["misparsed"]].iloc[0]
    assert row["name"] == "4b284b12b2" and df.index[df["misparsed"]][0] == 53
    assert (row["D"], row["U"]) == (8.41e10, 2.2e9)
    ok = df[~df["misparsed"]]
    assert (ok["D"] >= ok["U"]).all()


def test_datasets_pass_validation():
    runs = load_runs(load_chinchilla())
    assert runs.n_runs == 245 and runs.has("C")
    assert load_runs(load_chinchilla(drop_outliers=True), min_runs=5).n_runs == 240
    df = load_datablations()
    runs = load_runs(df[~df["misparsed"]], require=("N", "D", "U"), min_runs=7)
    assert runs.n_runs == 295
    assert list(runs.frame["name"]) == list(df.loc[~df["misparsed"], "name"])


def test_references():
    refs = references()
    assert refs["besiroglu2024"] == {"E": 1.817, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3659}
    assert refs["besiroglu2024_ci95"]["E"] == (1.769, 1.871)
    assert refs["besiroglu2024_hoffmann_procedure"]["B"] == 2143.86
    assert refs["hoffmann2022"]["A"] == 406.4
    assert refs["muennighoff2023"]["R_D_star"] == 15.39
    for params in refs.values():
        for v in params.values():
            assert isinstance(v, float) or (isinstance(v, tuple) and all(isinstance(x, float) for x in v))
    refs["besiroglu2024"]["E"] = 0.0
    assert references()["besiroglu2024"]["E"] == 1.817


def test_package_data_readme_keeps_provenance():
    from importlib.resources import files

    text = files("bayescale.datasets").joinpath("README.md").read_text(encoding="utf-8")
    assert "commit 92258837" in text and "huggingface/datablations (Apache-2.0)" in text
    assert "E = 1.8172, A = 477.84, B = 2143.86" in text


def test_docstring_examples_run():
    result = doctest.testmod(bayescale.datasets)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("loader", [load_chinchilla, load_datablations])
def test_each_call_returns_a_fresh_frame(loader):
    a = loader()
    a["N"] = 0.0
    assert loader()["N"].min() > 0
