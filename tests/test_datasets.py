"""Tests of the bundled datasets in bayescale.runs.datasets."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import bayescale.runs.datasets
from bayescale.runs.data import load_runs
from bayescale.runs.datasets import load_chinchilla, load_datablations, references


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

    text = files("bayescale.runs.datasets").joinpath("README.md").read_text(encoding="utf-8")
    assert "commit 92258837" in text and "huggingface/datablations (Apache-2.0)" in text
    assert "E = 1.8172, A = 477.84, B = 2143.86" in text


def test_docstring_examples_run():
    result = doctest.testmod(bayescale.runs.datasets)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("loader", [load_chinchilla, load_datablations, bayescale.runs.datasets.load_porian])
def test_each_call_returns_a_fresh_frame(loader):
    a = loader()
    a["N"] = 0.0
    assert loader()["N"].min() > 0


def test_porian_shape_columns_and_configs():
    from bayescale.runs.datasets import load_porian, porian_configs

    df = load_porian()
    assert len(df) == 1745
    assert list(df.columns) == ["N", "D", "C", "loss", "table", "dataset", "hparams", "warmup", "decay",
                                "param_count", "val", "config", "training"]
    labels = porian_configs()
    assert len(labels) == 15 == df["config"].nunique() and labels[0] == "main/rw/base/long/kaplan/kaplan/train"
    assert df.groupby("config", sort=False).size().tolist() == [
        107, 131, 132, 88, 121, 113, 132, 132, 88, 116, 126, 126, 106, 123, 104]
    # C is the IsoFLOP level and D = C / (6 N) under each configuration's N convention.
    np.testing.assert_allclose(6 * df["N"] * df["D"], df["C"], rtol=1e-12)
    assert df["C"].min() == 1.25e16 and df["C"].max() == 2.56e19
    # 9 sets of training runs behind the 15 configurations.
    assert df.groupby("training")["config"].nunique().to_dict()["rw/base/long/kaplan"] == 3
    assert df["training"].nunique() == 9
    assert "Porian" in df.attrs["source"] and "formll/resolving-scaling-law-discrepancies" in df.attrs["source"]
    one = load_porian("owt2/owt2/tuned/short/const/standard/val")
    assert len(one) == 116 and one["config"].nunique() == 1
    assert len(load_porian(labels[:2])) == 107 + 131
    with pytest.raises(KeyError, match="unknown Porian configuration"):
        load_porian("main/rw")
    runs = load_runs(df, min_runs=5)
    assert runs.n_runs == 1745 and runs.has("C")


def test_porian_readme_row_keeps_provenance():
    from importlib.resources import files

    text = files("bayescale.runs.datasets").joinpath("README.md").read_text(encoding="utf-8")
    assert "| `porian2024_runs.csv` | 1745 |" in text and "hadasah/scaling_laws, Li et al. 2025" in text
    assert "a = 0.834 (rw) / 0.870 (owt2)" in text
