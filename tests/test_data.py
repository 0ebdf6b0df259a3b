"""Tests of bayescale.runs.data: loading and validating run data."""

from __future__ import annotations

import doctest
import os

import numpy as np
import pandas as pd
import pytest

import bayescale.runs.data
import bayescale.runs.datasets
from bayescale.runs.data import RunData, load_runs
from bayescale.base.errors import DataError


def good_frame(n=6, **extra):
    df = pd.DataFrame({
        "N": np.geomspace(1e8, 1e10, n),
        "D": np.geomspace(2e9, 2e11, n),
        "loss": np.linspace(3.2, 2.2, n),
    })
    for k, v in extra.items():
        df[k] = v
    return df


def problems(df, **kw):
    with pytest.raises(DataError) as info:
        load_runs(df, **kw)
    return str(info.value)


# --- one test per kind of bad input -------------------------------------------------------


def test_missing_column_lists_present_columns_and_hint():
    msg = problems(pd.DataFrame({"params": [1e8, 2e8], "tokens": [1e9, 2e9], "loss": [3.0, 2.9]}))
    assert "missing required column 'N'" in msg and "missing required column 'D'" in msg
    assert "'params', 'tokens', 'loss'" in msg
    assert "columns={'params': 'N'}" in msg and "columns={'tokens': 'D'}" in msg


def test_missing_loss_always_required():
    msg = problems(pd.DataFrame({"N": [1e8], "D": [1e9]}), require=())
    assert "missing required column 'loss'" in msg


def test_nan_names_row_and_column():
    df = good_frame()
    df.loc[3, "loss"] = np.nan
    msg = problems(df)
    assert "row 3, column 'loss': missing value (NaN)" in msg


def test_inf_names_row_column_and_value():
    df = good_frame()
    df.loc[2, "D"] = np.inf
    df.loc[4, "N"] = -np.inf
    msg = problems(df)
    assert "row 2, column 'D': inf is not finite" in msg
    assert "row 4, column 'N': -inf is not finite" in msg
    assert "row 4, column 'N': -inf is not positive" not in msg  # reported once


def test_non_positive_N():
    df = good_frame()
    df.loc[1, "N"] = -5.0
    df.loc[2, "N"] = 0.0
    msg = problems(df)
    assert "row 1, column 'N': -5.0 is not positive" in msg
    assert "row 2, column 'N': 0.0 is not positive" in msg


def test_non_positive_D():
    df = good_frame()
    df.loc[5, "D"] = -1e9
    assert "row 5, column 'D': -1000000000.0 is not positive" in problems(df)


def test_non_positive_loss():
    df = good_frame()
    df.loc[0, "loss"] = 0.0
    assert "row 0, column 'loss': 0.0 is not positive" in problems(df)


def test_non_positive_C_and_U():
    df = good_frame(C=1e20, U=1e9)
    df.loc[1, "C"] = -1.0
    df.loc[2, "U"] = 0.0
    msg = problems(df)
    assert "row 1, column 'C': -1.0 is not positive" in msg
    assert "row 2, column 'U': 0.0 is not positive" in msg


def test_D_less_than_U():
    df = good_frame(U=1e9)
    df.loc[2, "U"] = 5e11
    msg = problems(df, require=("N", "D", "U"))
    assert "row 2, columns 'D', 'U'" in msg
    assert f"D = {float(df.loc[2, 'D'])!r} is less than U = 500000000000.0" in msg
    assert "unique tokens cannot exceed tokens seen" in msg


def test_too_few_runs():
    msg = problems(good_frame(3), min_runs=5)
    assert "3 runs, but the law has 5 parameters; need at least 5 runs" in msg
    load_runs(good_frame(5), min_runs=5)


def test_string_in_numeric_column():
    df = good_frame()
    df["N"] = df["N"].astype(object)
    df.loc[4, "N"] = "7B"
    df.loc[1, "N"] = "1e9"  # numeric text is accepted
    msg = problems(df)
    assert "row 4, column 'N': text '7B' is not a number" in msg
    assert "row 1" not in msg


def test_string_in_csv_column(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss\n1e8,2e9,3.0\nbig,4e9,2.8\n4e8,,2.6\n")
    msg = problems(path)
    assert "runs.csv has 2 problems (rows numbered from 0, after the header line):" in msg
    assert "row 1, column 'N': text 'big' is not a number" in msg
    assert "row 2, column 'D': missing value (NaN)" in msg


def test_boolean_in_numeric_column():
    df = good_frame()
    df["loss"] = df["loss"].astype(object)
    df.loc[2, "loss"] = True
    msg = problems(df)
    assert "row 2, column 'loss': boolean True is not a number" in msg
    msg = problems(good_frame(2, U=[True, False]), require=())
    assert "row 0, column 'U': boolean True is not a number" in msg
    assert "row 1, column 'U': boolean False is not a number" in msg


def test_empty_frame():
    msg = problems(good_frame().iloc[:0])
    assert "the data has no rows" in msg and "'N', 'D', 'loss'" in msg
    assert "no rows" in problems(pd.DataFrame())


def test_unknown_mapping_key_lists_columns():
    msg = problems(good_frame(), columns={"Model Size": "N"})
    assert "columns= maps 'Model Size', but there is no such column" in msg
    assert "columns present: 'N', 'D', 'loss'" in msg


def test_non_canonical_mapping_target_lists_canonical_names():
    df = good_frame().rename(columns={"N": "params"})
    msg = problems(df, columns={"params": "n_params"})
    assert "maps 'params' to 'n_params', which is not a canonical name" in msg
    assert "N, D, C, U, loss, group" in msg


def test_two_columns_mapped_to_one_name():
    msg = problems(good_frame(params=1e9), columns={"params": "N"})
    assert "more than one column is named (or mapped to) 'N'" in msg


# --- whole-error behaviour ------------------------------------------------------------------


def test_all_problems_listed_in_one_error_in_row_order():
    df = good_frame(U=1e9)
    df["D"] = df["D"].astype(object)
    df.loc[0, "loss"] = np.nan
    df.loc[1, "N"] = -1.0
    df.loc[2, "D"] = "lots"
    df.loc[3, "U"] = np.inf
    df.loc[4, "U"] = 1e12
    with pytest.raises(DataError) as info:
        load_runs(df, min_runs=10)
    err = info.value
    assert len(err.problems) == 6
    assert str(err).startswith("Run data has 6 problems:")
    assert err.problems[0].startswith("6 runs, but the law has 10 parameters")
    assert [p.split(",")[0] for p in err.problems[1:]] == ["row 0", "row 1", "row 2", "row 3", "row 4"]


def test_problem_list_is_capped():
    df = pd.DataFrame({"N": -np.ones(10_000), "D": np.ones(10_000), "loss": np.ones(10_000)})
    err = pytest.raises(DataError, load_runs, df).value
    assert "Run data has 10000 problems" in str(err)
    assert len(err.problems) == 51 and err.problems[-1] == "... and 9950 more"


def test_labels_use_the_users_column_name_and_index():
    df = good_frame(3).rename(columns={"N": "Model Size"})
    df.index = ["run-a", "run-b", "run-c"]
    df.loc["run-b", "Model Size"] = -2.0
    msg = problems(df, columns={"Model Size": "N"})
    assert "row 'run-b', column 'Model Size' (N): -2.0 is not positive" in msg


def test_derived_D_is_checked_only_when_its_sources_are_good():
    df = pd.DataFrame({"N": [1e8, -1.0], "C": [1e19, 1e19], "loss": [3.0, 2.0]})
    msg = problems(df)
    assert "row 1, column 'N'" in msg and "'D'" not in msg


def test_missing_D_hints_derivation():
    df = pd.DataFrame({"N": [1e8], "C": [1e19], "loss": [3.0]})
    assert "derive_D_from_C=True" in problems(df, derive_D_from_C=False)


# --- successful loads -----------------------------------------------------------------------


def test_D_from_C_is_exact_and_both_kept():
    N = np.array([7.5e7, 1e9, 1.6e10])
    C = np.array([1.1e18, 3.3e20, 1.3e22])
    runs = load_runs(pd.DataFrame({"Model Size": N, "Training FLOP": C, "loss": [3.0, 2.5, 2.1]}),
                     columns={"Model Size": "N", "Training FLOP": "C"})
    np.testing.assert_array_equal(runs.inputs("D")["D"], C / (6 * N))
    assert runs.has("C") and runs.has("D") and runs.derived == ("D",)


def test_C_from_N_D():
    runs = load_runs(good_frame(), require=("C",))
    np.testing.assert_array_equal(runs.inputs("C")["C"], 6 * runs.inputs("N")["N"] * runs.inputs("D")["D"])
    assert runs.derived == ("C",)


def test_csv_and_parquet_round_trip(tmp_path):
    df = good_frame(group=["a", "b", "a", "c", "b", "a"], note=list("uvwxyz"))
    df.to_csv(tmp_path / "runs.csv", index=False)
    df.to_parquet(tmp_path / "runs.parquet")
    expected = load_runs(df).frame
    for name in ("runs.csv", "runs.parquet"):
        got = load_runs(tmp_path / name)
        pd.testing.assert_frame_equal(got.frame, expected)
        assert load_runs(str(tmp_path / name)).n_runs == 6


def test_bad_paths(tmp_path):
    assert "no such file" in problems(tmp_path / "absent.csv")
    (tmp_path / "runs.txt").write_text("N,D,loss\n")
    msg = problems(tmp_path / "runs.txt")
    assert "runs.txt" in msg and ".csv, .parquet" in msg


def test_index_preserved_and_nothing_dropped():
    df = good_frame(group=[1, 2, 1, 2, 3, 3], note=list("abcdef"))
    df.index = [10, 7, 33, 2, 5, 99]
    runs = load_runs(df)
    out = runs.frame
    assert list(out.index) == [10, 7, 33, 2, 5, 99]
    assert list(out.columns) == ["N", "D", "loss", "group", "note", "C"]
    assert list(out["note"]) == list("abcdef")
    np.testing.assert_array_equal(out["N"], df["N"])
    assert runs.groups == ("1", "2", "3")
    np.testing.assert_array_equal(runs.group_index, [0, 1, 0, 1, 2, 2])
    assert all(out[c].dtype == np.float64 for c in ("N", "D", "loss", "C"))


def test_integer_columns_become_float():
    runs = load_runs(pd.DataFrame({"N": [100, 200], "D": [1000, 3000], "loss": [3, 2]}))
    assert runs.frame["N"].dtype == np.float64 and runs.loss.tolist() == [3.0, 2.0]


def test_rundata_accessors():
    runs = load_runs(good_frame())
    assert len(runs) == runs.n_runs == 6
    assert runs.groups is None and runs.group_index.tolist() == [0] * 6
    arrays = runs.inputs(["N", "D"])
    assert set(arrays) == {"N", "D"} and arrays["N"].dtype == np.float64
    arrays["N"][:] = 0  # copies: the RunData is unchanged
    view, copy = runs.frame, runs.to_frame()
    view["N"], copy["N"] = 0.0, 0.0
    assert runs.inputs("N")["N"].min() > 0
    with pytest.raises(DataError, match="missing column 'U'"):
        runs.inputs("U")
    assert repr(runs).startswith("RunData(6 runs; columns N, D, loss, C (derived); N 1e+08–1e+10")


def test_load_runs_is_idempotent_and_rechecks():
    runs = load_runs(good_frame(3))
    assert load_runs(runs) is runs
    assert "missing required column 'U'" in problems(runs, require=("N", "D", "U"))
    assert "3 runs, but the law has 5 parameters" in problems(runs, min_runs=5)
    assert RunData(good_frame(3)).n_runs == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="not canonical"):
        load_runs(good_frame(), require=("params",))
    with pytest.raises(TypeError):
        load_runs([1, 2, 3])


def test_docstring_examples_run():
    result = doctest.testmod(bayescale.runs.data)
    assert result.attempted > 0 and result.failed == 0


def test_deriving_d_from_bad_values_reports_them_without_numpy_warnings():
    import warnings

    frame = pd.DataFrame({"N": [1e9, np.nan, 0.0] * 3, "C": [1e20] * 9, "loss": [2.0] * 9})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail here before the DataError
        with pytest.raises(DataError, match=r"row 1, column 'N': missing value"):
            load_runs(frame)


# ------------------------------------------------------------------ malformed files and arguments
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, derandomize=True)
@given(extra=st.lists(st.integers(1, 3), min_size=1, max_size=4), at=st.integers(0, 3))
def test_csv_rows_with_more_fields_than_the_header_are_refused_by_line(tmp_path_factory, extra, at):
    """pandas takes surplus fields of the first row as the index and shifts every value: refuse instead."""
    rows = ["1e9,2e10,2.5"] * 4
    lines = []
    for k, n in enumerate(extra):
        row = at + k if at + k < len(rows) else len(rows) - 1
        rows[row] = "1e9,2e10,2.5" + ",7" * n
        lines.append(row + 2)  # the header is line 1
    path = tmp_path_factory.mktemp("ragged") / "runs.csv"
    path.write_text("N,D,loss\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="more fields than its header") as info:
        load_runs(path)
    assert f"line {min(lines)}:" in str(info.value)


def test_repeated_csv_header_names_are_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,N,D,loss\n1e9,2e9,2e10,2.5\n")
    with pytest.raises(DataError, match=r"column name 'N' appears 2 times in the header \(fields 1, 2\)"):
        load_runs(path)
    path.write_text("N,D,loss\n1e9,2e10,2.5,\n")  # a trailing delimiter is not a field: still fine
    assert load_runs(path).n_runs == 1


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_path_that_is_not_a_file_says_what_it_is_without_blocking(tmp_path, kind):
    path = tmp_path / "runs.csv"
    os.mkdir(path) if kind == "directory" else os.mkfifo(path)  # opening a FIFO would block
    with pytest.raises(DataError, match="is a directory" if kind == "directory" else r"is a named pipe \(FIFO\)"):
        load_runs(path)
    with pytest.raises(DataError, match="no such file"):
        load_runs(tmp_path / "absent.csv")


@pytest.mark.parametrize("columns", [["N", "D"], "N=N", ("N", "N"), 3])
def test_columns_must_be_a_mapping(columns):
    with pytest.raises(TypeError, match=r"columns= must be a mapping .* got"):
        load_runs(good_frame(), columns=columns)


def test_columns_mapped_to_missing_or_repeated_names_are_named():
    frame = good_frame().rename(columns={"N": "params"})
    assert "columns= maps 'size', but there is no such column" in problems(frame, columns={"size": "N"})
    assert "more than one column is named (or mapped to) 'D'" in problems(frame, columns={"params": "N", "loss": "D"})


def test_dict_columns_of_unequal_length_name_each_length():
    with pytest.raises(DataError, match="same length") as info:
        load_runs({"N": [1e9, 2e9], "D": [2e10], "loss": [2.5, 2.4]})
    assert "column 'N' has 2 values" in str(info.value) and "column 'D' has 1 value" in str(info.value)


@pytest.mark.parametrize("labels", [[1, "1"], [True, "True"], [1.5, "1.5"], [np.int64(2), "2"]])
def test_group_labels_that_read_the_same_are_refused(labels):
    frame = good_frame(4, group=labels * 2)
    message = problems(frame)
    assert "are different values that read as the same label" in message
    assert repr(labels[1]) in message


@pytest.mark.parametrize("column", ["group", "run"])
def test_a_list_or_dict_cell_as_a_label_is_refused_by_row(column):
    """A nested file read into a frame can put lists in a label column: a DataError naming the row, not a TypeError."""
    frame = good_frame(4, **{column: [[], "a", {"x": 1}, "b"]})
    message = problems(frame)
    assert f"row 0, column '{column}': [] is not a" in message
    assert f"row 2, column '{column}': {{'x': 1}} is not a" in message


def test_equal_group_labels_of_numpy_and_python_types_still_merge():
    runs = load_runs(good_frame(4, group=[np.int64(1), 1, 2, 2]))
    assert runs.groups == ("1", "2")


@pytest.mark.parametrize("ratio, refused", [(1.0, False), (2.3, False), (0.05, False), (60.0, False),
                                            (1 / 150, True), (150.0, True), (8.64e19, True), (1e-20, True)])
def test_compute_inconsistent_with_6ND_is_refused(ratio, refused):
    frame = good_frame(4)
    frame["C"] = 6 * frame["N"] * frame["D"]
    frame.loc[2, "C"] *= ratio
    if refused:
        message = problems(frame)
        assert "row 2, columns 'N', 'D', 'C'" in message and f"is {ratio:.3g} times 6 N D" in message
    else:
        assert load_runs(frame).n_runs == 4


def test_every_bundled_dataset_passes_the_compute_check():
    from pathlib import Path

    for name in ("load_chinchilla", "load_datablations", "load_porian"):
        assert load_runs(getattr(bayescale.runs.datasets, name)()).n_runs > 0
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    for path in sorted(shared.glob("*.csv")):
        assert load_runs(path, require=(), require_loss=False).n_runs > 0


# ------------------------------------------------------------------ checkpoint columns
def checkpoint_frame():
    """Two runs of three checkpoints: one constant schedule, one cosine of 3e9 tokens."""
    return pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "N": [1e8] * 3 + [3e8] * 3,
                         "D": [1e9, 2e9, 3e9, 1e9, 2e9, 3e9], "loss": [3.3, 3.1, 3.0, 3.1, 2.9, 2.8],
                         "schedule": ["constant"] * 3 + ["Cosine"] * 3, "D_total": [np.nan] * 3 + [3e9] * 3})


def test_checkpoint_columns_are_read_and_mid_cosine_rows_are_not_law_points():
    runs = load_runs(checkpoint_frame())
    assert runs.run_ids == ("a", "b") and runs.run_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert runs.has_checkpoints
    assert runs.frame["schedule"].tolist() == ["constant"] * 3 + ["cosine"] * 3  # case folded
    # the cosine run's rows before its end are not on the final-loss law; constant-schedule rows are
    assert runs.law_rows.tolist() == [True, True, True, False, False, True]
    kept = runs.take(runs.law_rows)
    assert kept.n_runs == 4 and kept.run_index.tolist() == [0, 0, 0, 1]
    # within END_RTOL of D_total counts as the end (token counts logged as steps x batch)
    frame = checkpoint_frame()
    frame.loc[5, "D"] = 3e9 * (1 - 1e-4)
    assert load_runs(frame).law_rows[5]


def test_without_run_column_each_row_is_its_own_run():
    runs = load_runs(good_frame(4))
    assert runs.run_ids is None and runs.run_index.tolist() == [0, 1, 2, 3] and not runs.has_checkpoints
    assert runs.law_rows.all()
    one_row_each = load_runs(good_frame(3, run=["x", "y", "z"]))
    assert one_row_each.run_ids == ("x", "y", "z") and not one_row_each.has_checkpoints


@pytest.mark.parametrize("edit, expected", [
    (lambda f: f.loc.__setitem__((4, "N"), 2e8),
     "row 4, column 'N': 200000000.0, but the first row of run 'b' (row 3) has 300000000.0; the rows of one run "
     "share N"),
    (lambda f: f.loc.__setitem__((2, "schedule"), "linear"),
     "row 2, column 'schedule': 'linear' is not a schedule; expected one of constant, wsd, cosine"),
    (lambda f: f.loc.__setitem__((1, "schedule"), None), "row 1, column 'schedule': missing value"),
    (lambda f: f.loc.__setitem__((4, "D_total"), np.nan),
     "row 4, column 'D_total': missing value on a cosine row; expected the cosine schedule's length"),
    (lambda f: f.loc.__setitem__((5, "D_total"), -3e9), "row 5, column 'D_total': -3000000000.0 is not positive"),
    (lambda f: f.loc.__setitem__((5, "D"), 4e9),
     "row 5, columns 'D', 'D_total': D = 4000000000.0 is more than D_total = 3000000000.0"),
    (lambda f: f.loc.__setitem__((2, "D"), 2e9), "row 2, columns 'run', 'D': run 'a' has another row at D = "),
    (lambda f: f.loc.__setitem__((0, "run"), None), "row 0, column 'run': missing run identifier"),
    (lambda f: f.__setitem__("run", [1, 1, 1, "1", "1", "1"]), "run identifiers 1 (int) and '1' (str)"),
    (lambda f: f.drop(columns="D_total", inplace=True),
     "column 'schedule' names 'cosine' on 3 row(s), but there is no 'D_total' column"),
])
def test_bad_checkpoint_columns_are_refused_naming_row_column_and_value(edit, expected):
    frame = checkpoint_frame()
    edit(frame)
    assert expected in problems(frame)


def test_checkpoint_columns_map_from_the_users_names():
    frame = checkpoint_frame().rename(columns={"run": "seed_name", "D_total": "tokens_total"})
    runs = load_runs(frame, columns={"seed_name": "run", "tokens_total": "D_total"})
    assert runs.run_ids == ("a", "b") and runs.has("D_total")
    assert "'tokens_total' (D_total)" in problems(frame.assign(tokens_total=-1.0),
                                                   columns={"seed_name": "run", "tokens_total": "D_total"})
