"""Hardening: arbitrary input only ever raises our documented errors (hypothesis), damaged files give
clear errors, saves are atomic even under SIGKILL, numerics stay finite and exact at the extremes, and an
interrupted fit leaves the session usable."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from decimal import Decimal, getcontext

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayescale as bs
from bayescale.core.assumptions import check_assumptions
from bayescale.base.errors import DataError, FileFormatError, SpecError
from bayescale.core.formula import parse_formula
from bayescale.fitting.model import model_from_dict
from conftest import TRUE_CHINCHILLA

# deadline: every example must finish in 2 s (none hangs); derandomize keeps CI reproducible
PROPERTY = settings(max_examples=150, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------ run data validation
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.booleans(), st.none(),
    st.text(max_size=8), st.sampled_from(["1e9", "nan", "inf", "-1", "", " 3.5 ", "0x10", "1_000"]),
    st.binary(max_size=4), st.decimals(allow_nan=False), st.just(Decimal("NaN")), st.complex_numbers(), st.datetimes(),
    st.lists(st.integers(), max_size=2), st.tuples(st.floats()),
)
NAMES = st.one_of(st.sampled_from(["N", "D", "C", "U", "loss", "group", "Model Size", "n", "Loss", ""]),
                  st.text(max_size=6), st.integers(-3, 3))


@st.composite
def frames(draw):
    n_rows = draw(st.integers(0, 6))
    if draw(st.booleans()):  # a plausible table, sometimes with one bad cell
        extra = draw(st.lists(st.sampled_from(["C", "U", "group", "eval"]), max_size=2, unique=True))
        names = ["N", "D", "loss"] + extra
        frame = pd.DataFrame({n: draw(st.lists(st.floats(1.0, 1e15), min_size=n_rows, max_size=n_rows)) for n in names},
                             index=pd.RangeIndex(n_rows), dtype=float)
        if n_rows and draw(st.booleans()):
            frame = frame.astype(object)
            frame.iat[draw(st.integers(0, n_rows - 1)), draw(st.integers(0, len(names) - 1))] = draw(CELLS)
        return frame
    names = draw(st.lists(NAMES, max_size=6))
    data = {}
    for name in names:
        if draw(st.booleans()):  # a typed column ...
            dtype = draw(st.sampled_from(["float", "int", "object", "category"]))
            values = draw(st.lists(CELLS, min_size=n_rows, max_size=n_rows))
            try:
                data[name] = pd.Series(values, dtype=dtype) if dtype != "object" else pd.Series(values, dtype=object)
            except (TypeError, ValueError, ArithmeticError):
                data[name] = pd.Series(values, dtype=object)
        else:  # ... or plain numbers
            data[name] = pd.Series(draw(st.lists(st.floats(), min_size=n_rows, max_size=n_rows)), dtype=float)
    frame = pd.DataFrame(data, index=pd.RangeIndex(n_rows)) if data else pd.DataFrame(index=pd.RangeIndex(n_rows))
    if names and draw(st.booleans()):  # duplicate column labels
        frame = pd.concat([frame, frame.iloc[:, :1]], axis=1)
    if draw(st.booleans()):
        frame.index = draw(st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=n_rows,
                                    max_size=n_rows))
    return frame


MAPPINGS = st.one_of(st.none(), st.dictionaries(NAMES, st.one_of(NAMES, st.sampled_from(["N", "D", "C", "loss"])),
                                                max_size=3))


@PROPERTY
@given(frame=frames(), columns=MAPPINGS, require=st.sampled_from([("N", "D"), ("N",), ("C",), ("N", "D", "U"), ()]),
       min_runs=st.integers(1, 8))
def test_load_runs_accepts_or_raises_data_error_only(frame, columns, require, min_runs):
    try:
        runs = bs.load_runs(frame, columns=columns, require=require, min_runs=min_runs)
    except DataError as exc:
        assert str(exc).strip() and exc.problems  # says what is wrong
        return
    # accepted: every canonical numeric column is finite and positive, nothing was dropped
    assert runs.n_runs == len(frame) >= min_runs
    for col in ("N", "D", "C", "U", "loss"):
        if runs.has(col):
            values = runs.frame[col].to_numpy()
            assert values.dtype == np.float64 and np.all(np.isfinite(values)) and np.all(values > 0)


def test_load_runs_from_a_hostile_csv_never_runs_code(tmp_path):
    sentinel = tmp_path / "pwned"
    csv = tmp_path / "runs.csv"
    payload = f"__import__('os').system('touch {sentinel}')"
    csv.write_text(f"N,D,loss\n1e9,2e10,{payload}\n=cmd|' /C calc'!A0,1e10,2.5\n")
    with pytest.raises(DataError, match="is not a number") as info:
        bs.load_runs(csv)
    assert "row 0, column 'loss'" in str(info.value) and "row 1, column 'N'" in str(info.value)
    assert not sentinel.exists()


# ------------------------------------------------------------------ formula and spec parsing
FORMULA_NAMES = ["N", "D", "E", "A", "B", "alpha", "beta"]
FRAGMENTS = st.sampled_from([
    "E", "A", "N", "D", "alpha", "beta", "1", "0.5", "1e308", "1e400", "-", "+", "*", "/", "**", "(", ")", ",",
    " ", "exp(", "log(", "minimum(", "maximum(", "__import__('os').system('touch {s}')", "open('{s}', 'w')",
    "exec('x=1')", "eval('1')", "N.__class__", "().__class__.__bases__[0]", "lambda: 0", "[1]", "{1: 2}",
    "N if E else D", "x := 1", "'s'", "b'x'", "f'{{N}}'", "N[0]", "E < A", "not E", "~N", "...", "\\", "#",
    "\n", "\x00", "9" * 400, "1j", "**-", "yield", "await N", "*N",
])


@st.composite
def formula_texts(draw, sentinel):
    text = "".join(draw(st.lists(FRAGMENTS, max_size=12))).replace("{s}", sentinel)
    return draw(st.one_of(st.just(text), st.text(max_size=40), st.just(text * draw(st.integers(1, 300)))))


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    return tmp_path_factory.mktemp("formula") / "pwned"


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # Python's parser warns on e.g. "1e9alpha"
@PROPERTY
@given(data=st.data())
def test_formula_parsing_accepts_or_raises_spec_error_and_never_runs_code(data, sentinel):
    text = data.draw(formula_texts(str(sentinel)))
    try:
        formula = parse_formula(text, FORMULA_NAMES)
    except SpecError as exc:
        assert str(exc).startswith(("formula refused", "a formula"))
    else:
        values = {"N": np.array([1e3, 1e9, 1e14]), "D": np.array([1e6, 1e10, 1e16]), "E": 1.7, "A": 400.0,
                  "B": 2000.0, "alpha": 0.34, "beta": 0.28}
        with np.errstate(all="ignore"):
            out = np.asarray(formula.evaluate(values), dtype=float)  # a number per run, nothing else
        assert out.size in (1, 3)
        assert parse_formula(formula.to_text(), FORMULA_NAMES) == formula  # text form parses to the same tree
    assert not sentinel.exists()


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=10)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=12)
SPEC_KEYS = st.sampled_from(["law", "likelihood", "priors", "pooling", "name", "description", "references", "prior"])
LAW_VALUES = st.one_of(st.sampled_from(["chinchilla", "kaplan", "power_n", "nope", ""]), JSON, st.fixed_dictionaries(
    {"formula": st.one_of(st.sampled_from(["E + A / N**alpha", "E + A/N**alpha + B/D**beta", "__import__('os')"]),
                          st.text(max_size=20)),
     "inputs": st.one_of(st.just(["N"]), st.just(["N", "D"]), JSON),
     "parameters": st.one_of(st.just({"E": {"kind": "irreducible"}, "A": {"kind": "coefficient",
                                      "scales_with": ["N", "alpha"]}, "alpha": {"kind": "exponent"}}), JSON)}))
PRIOR_TABLES = st.dictionaries(
    st.sampled_from(["E", "A", "alpha", "sigma", "nu", "zeta", "E_pop"]),
    st.one_of(JSON, st.fixed_dictionaries({"family": st.sampled_from(["LogNormal", "Normal", "HalfNormal", "Gamma",
                                                                      "Uniform", "Evil"]),
                                           "mu": st.floats(), "sigma": st.floats()})), max_size=3)


@PROPERTY
@given(spec=st.dictionaries(SPEC_KEYS, JSON, max_size=5), law=LAW_VALUES, priors=PRIOR_TABLES,
       pooling=st.one_of(JSON, st.dictionaries(st.sampled_from(["E", "A", "alpha", "q"]),
                                               st.sampled_from(["partial", "shared", "independent", "x"]))))
def test_model_specs_build_or_raise_spec_error(spec, law, priors, pooling):
    spec = {**spec, "law": law, "priors": priors, "pooling": pooling}
    try:
        model = model_from_dict(spec)
    except SpecError as exc:
        assert str(exc).startswith("model specification: ")
    else:
        again = model_from_dict(model.to_dict())  # what a saved fit stores reads back to the same model
        assert again.to_dict() == model.to_dict()


TOML = st.sampled_from(['law = "chinchilla"\n[priors]\nalpha = "x"\n', 'law = [1, 2]\n',
                        'law = "kaplan"\nlikelihood = 3\n',
                        'law = { formula = "E + A / N**alpha", inputs = ["N"] }\n', 'law = "chinchilla"\n'])


@PROPERTY
@given(content=st.one_of(st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
                         st.binary(max_size=200), TOML.map(str.encode)))
def test_spec_files_load_or_raise_spec_error(content, tmp_path_factory):
    """Any bytes in a .toml file: a model, or a SpecError that names the file (not valid TOML, not UTF-8 ...)."""
    path = tmp_path_factory.getbasetemp() / "spec.toml"
    path.write_bytes(content)
    try:
        model = bs.ScalingModel.from_spec(path)
    except SpecError as exc:
        assert str(path) in str(exc)
    else:
        assert model.name == "spec"


# ------------------------------------------------------------------ damaged files
@pytest.fixture(scope="module")
def saved(synthetic_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "fit.nc"
    synthetic_fit.save(path)
    return path


@PROPERTY
@given(cut=st.floats(0.0, 0.999))
def test_truncated_fit_files_raise_file_format_error(saved, cut, tmp_path_factory):
    data = saved.read_bytes()
    path = tmp_path_factory.getbasetemp() / "cut.nc"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(FileFormatError, match=str(path)):
        bs.load(path)


# h5netcdf warns while closing a file it failed to open
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=30, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(where=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=8), byte=st.integers(0, 255))
def test_corrupted_fit_files_load_or_raise_file_format_error(saved, where, byte, tmp_path_factory):
    data = bytearray(saved.read_bytes())
    for w in where:
        data[int(len(data) * w)] = byte
    path = tmp_path_factory.getbasetemp() / "corrupt.nc"
    path.write_bytes(bytes(data))
    try:
        fit = bs.load(path)
    except FileFormatError:
        return
    assert set(fit.model.param_names) <= set(fit.posterior.data_vars)  # loaded: a usable fit


def test_foreign_and_future_files(saved, tmp_path):
    png = tmp_path / "picture.nc"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(FileFormatError, match="not a readable netCDF"):
        bs.load(png)
    tree = xr.open_datatree(saved, engine="h5netcdf").load()
    for value, message in ((7, "format 7 .*Upgrade bayescale"), ("two", "not an integer")):
        tree.attrs["bayescale_format"] = value
        path = tmp_path / f"v{value}.nc"
        tree.to_netcdf(path, engine="h5netcdf")
        with pytest.raises(FileFormatError, match=message):
            bs.load(path)
    tree.attrs["bayescale_format"] = 1
    del tree.attrs["model_spec"]
    tree.to_netcdf(tmp_path / "incomplete.nc", engine="h5netcdf")
    with pytest.raises(FileFormatError, match="missing .*model_spec.*incomplete"):
        bs.load(tmp_path / "incomplete.nc")


def _edit_spec(key, change):
    def edit(tree):
        spec = json.loads(tree.attrs[key])
        change(spec)
        tree.attrs[key] = json.dumps(spec)
    return edit


def _edit_group(group, change):
    def edit(tree):
        tree[group] = xr.DataTree(change(tree[group].to_dataset()))
    return edit


def _cut(tree):
    for group in ("posterior", "log_likelihood", "sample_stats", "posterior_predictive"):
        tree[group] = xr.DataTree(tree[group].to_dataset().isel(chain=[0], draw=[0]))


EDITS = {  # what a person might change in a saved fit, and the part of the digest that catches it
    "likelihood": (_edit_spec("model_spec", lambda s: s.update(likelihood="normal")), "spec"),
    "law": (_edit_spec("model_spec", lambda s: s.update(law="power_n")), "spec"),
    "prior": (_edit_spec("priors", lambda p: p["E"].update({k: 2 * v for k, v in p["E"].items()
                                                             if isinstance(v, float)})), "spec"),
    "sampler": (_edit_spec("sampler", lambda s: s.update(draws=5)), "spec"),
    "E + 0.3": (_edit_group("posterior", lambda d: d.assign(E=d["E"] + 0.3)), "posterior"),
    "int": (_edit_group("posterior", lambda d: d.assign(alpha=d["alpha"].round().astype(int) + 1)), "posterior"),
    "1 x 1": (_cut, "posterior"),
    "loss": (_edit_group("constant_data", lambda d: d.assign(loss=d["loss"] * 1.1)), "runs"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_fit_edited_after_saving_is_refused_naming_what_changed(saved, tmp_path, edit):
    change, part = EDITS[edit]
    tree = xr.open_datatree(saved, engine="h5netcdf").load()
    change(tree)
    tree.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(FileFormatError, match=rf"edited\.nc' was changed after it was saved.*\b{part} \("):
        bs.load(tmp_path / "edited.nc")
    # the same edit in a file without a digest (an older file) is caught by its log-likelihood or its settings
    del tree.attrs["bayescale_digest"]
    tree.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.UnverifiedFileWarning)
        if edit in ("sampler", "1 x 1", "law"):
            with pytest.raises(FileFormatError):
                bs.load(tmp_path / "old.nc")
        elif edit not in ("prior",):  # a prior does not enter the likelihood: only the digest sees it
            with pytest.raises(FileFormatError, match="log-likelihood does not follow from its posterior"):
                bs.load(tmp_path / "old.nc")


def test_a_fit_saved_without_a_digest_loads_with_one_warning(saved, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bs.load(saved)  # a fresh file: verified, silent
    tree = xr.open_datatree(saved, engine="h5netcdf").load()
    del tree.attrs["bayescale_digest"]
    tree.to_netcdf(tmp_path / "older.nc", engine="h5netcdf")
    with pytest.warns(bs.UnverifiedFileWarning, match="older.nc' carries no digest") as record:
        first, again = bs.load(tmp_path / "older.nc"), bs.load(tmp_path / "older.nc")
    assert len([w for w in record if issubclass(w.category, bs.UnverifiedFileWarning)]) == 1
    np.testing.assert_array_equal(first.posterior["E"].values, again.posterior["E"].values)
    first.save(tmp_path / "resaved.nc")  # saving again adds the digest
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bs.load(tmp_path / "resaved.nc")


def test_a_pooled_spec_without_groups_is_refused_at_load(saved, tmp_path):
    tree = xr.open_datatree(saved, engine="h5netcdf").load()
    spec = json.loads(tree.attrs["model_spec"])
    spec["pooling"] = {"E": "partial"}
    tree.attrs["model_spec"] = json.dumps(spec)
    del tree.attrs["bayescale_digest"]
    tree.to_netcdf(tmp_path / "pooled.nc", engine="h5netcdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.UnverifiedFileWarning)
        with pytest.raises(FileFormatError, match="pools .*'E': 'partial'.* no 'group' column"):
            bs.load(tmp_path / "pooled.nc")


@pytest.mark.parametrize("path", [None, 3, b"fit.nc", ["fit.nc"]])
def test_load_needs_a_path(path):
    with pytest.raises(TypeError, match=r"load\(\) needs the path of a fit file.*not " + type(path).__name__):
        bs.load(path)


def test_fit_many_folders_from_a_future_version_or_damaged(tmp_path):
    folder = tmp_path / "fits"
    folder.mkdir()
    index = folder / "index.json"
    cases = [('{"bayescale_batch": 9, "model": {}, "by": [], "fits": {}}', "format 9.*Upgrade bayescale"),
             ("[1, 2", "not a readable fit_many index"),
             ('{"bayescale_batch": 1, "model": {"law": "chinchilla"}, "by": ["k"], "fits": {"../x.nc": {"key": [1]}}}',
              "not a file in the folder")]
    for i, (text, message) in enumerate(cases):
        index.write_text(text)
        with pytest.raises(FileFormatError, match=message):
            bs.FitCollection.load(folder)
        with pytest.raises(bs.BayescaleError, match=message if i < 2 else "holds fits of a different model"):
            bs.fit_many(bs.ScalingModel("power_n"), pd.DataFrame({"N": [1e8] * 5, "loss": 3.0, "k": 1}), by="k",
                        checkpoint_dir=folder)


SAVER = textwrap.dedent("""
    import sys
    import bayescale as bs
    fit = bs.load(sys.argv[1])
    print("ready", flush=True)
    while True:
        fit.save(sys.argv[2])
    """)


def test_sigkill_during_saves_never_leaves_a_bad_file(saved, tmp_path):
    """A process saving over the same file again and again is killed at random moments; the file always
    loads as the original fit (write to a temporary file, then rename)."""
    target = tmp_path / "fit.nc"
    target.write_bytes(saved.read_bytes())
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    rng = np.random.default_rng(0)
    proc = subprocess.Popen([sys.executable, str(script), str(saved), str(target)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.2, 0.6))  # several saves in, mid-way through one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = bs.load(target)
    original = bs.load(saved)
    np.testing.assert_array_equal(again.posterior["alpha"].values, original.posterior["alpha"].values)


# ------------------------------------------------------------------ numerics at the extremes
getcontext().prec = 60


def _reference_log_loss(N, D, p) -> float:
    """log(E + A / N**alpha + B / D**beta) in 60-digit decimal arithmetic."""
    N, D = Decimal(float(N)), Decimal(float(D))
    E, A, B, a, b = (Decimal(float(p[k])) for k in ("E", "A", "B", "alpha", "beta"))
    return float((E + A / N**a + B / D**b).ln())


@PROPERTY
@given(logN=st.floats(3, 14), logD=st.floats(3, 20), E=st.floats(0.5, 5), logA=st.floats(-2, 6),
       logB=st.floats(-2, 6), alpha=st.floats(0.05, 1.5), beta=st.floats(0.05, 1.5))
def test_chinchilla_log_loss_is_exact_from_tiny_to_huge_models(logN, logD, E, logA, logB, alpha, beta):
    """From N = 1e3 to 1e14 and D to 1e20, the loss is computed to ~1e-13 relative (log-sum-exp), also
    where the reducible part is 1e-20 of E (losses close to E)."""
    p = dict(E=E, A=10**logA, B=10**logB, alpha=alpha, beta=beta)
    got = float(bs.get_law("chinchilla").log_loss({"N": 10.0**logN, "D": 10.0**logD}, p))
    assert math.isfinite(got)
    assert got == pytest.approx(_reference_log_loss(10.0**logN, 10.0**logD, p), rel=1e-12, abs=1e-13)


@pytest.mark.filterwarnings("ignore::bayescale.ExtrapolationWarning")
@pytest.mark.parametrize("which", ["default", "known form"])
def test_predictions_are_finite_and_ordered_across_the_whole_range(which, synthetic_fit, synthetic_fit_known_form):
    fit = synthetic_fit if which == "default" else synthetic_fit_known_form
    N = np.geomspace(1e3, 1e14, 23)
    grid = {"N": np.repeat(N, 3), "D": np.concatenate([[n, 20 * n, 1e6 * n] for n in N])}  # up to D = 1e20
    pred = fit.predict(grid, random_seed=0)
    cols = ["loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"]
    values = pred[cols].to_numpy()
    assert np.all(np.isfinite(values)) and np.all(values > 0)
    assert np.all(pred.curve_lower <= pred.loss_median) and np.all(pred.loss_median <= pred.curve_upper)
    # The new-run band is the curve band widened by run noise. Far out (N = 1e3) the curve's spread dwarfs
    # the noise (sigma ~ 1%), so the two bands' ends agree up to Monte Carlo error of a 5% tail quantile of
    # 4000 draws (~1% of the band's width): allow 3% of the width.
    slack = 0.03 * (pred.curve_upper - pred.curve_lower)
    assert np.all(pred.new_run_lower <= pred.curve_lower + slack)
    assert np.all(pred.curve_upper <= pred.new_run_upper + slack)
    post = fit.posterior
    if which == "default":  # the form discrepancy keeps every draw above its irreducible loss
        assert np.all(pred.curve_lower > np.quantile(post["E"].values, 0.05))
        return
    E, A, B, a, b = (post[k].values.ravel()[:, None] for k in ("E", "A", "B", "alpha", "beta"))
    direct = np.median(E + A * grid["N"] ** -a + B * grid["D"] ** -b, axis=0)  # plain formula, per draw
    np.testing.assert_allclose(pred.loss_median, direct, rtol=1e-10)
    # far out the loss approaches E from above; at N = 1e3 it is huge (480 / 1e3**0.35 ~ 43) but finite
    assert np.all(pred.loss_median > np.median(E)) and np.all(pred[pred.N == 1e3].loss_median > 10)


@pytest.mark.filterwarnings("ignore::bayescale.ExtrapolationWarning")
def test_allocations_are_finite_and_match_the_closed_form_from_1e15_to_1e30_flop(synthetic_fit,
                                                                                  synthetic_fit_known_form):
    budgets = np.logspace(15, 30, 16)
    default = synthetic_fit.allocate(budgets)  # with the form discrepancy: finite, budget kept, loss falling
    assert np.all(np.isfinite(default.select_dtypes("number").to_numpy()))
    assert np.all(np.diff(default.loss_median) < 0) and np.all(np.diff(default.N_median) > 0)
    table = synthetic_fit_known_form.allocate(budgets)
    assert np.all(np.isfinite(table.select_dtypes("number").to_numpy()))
    post = synthetic_fit_known_form.posterior
    A, B, a, b = (post[k].values.ravel() for k in ("A", "B", "alpha", "beta"))
    for C, row in zip(budgets, table.itertuples()):
        # N_opt = G (C/6)^(b/(a+b)), G = (a A / (b B))^(1/(a+b)); computed here in logs, per draw
        log_N = (np.log(a * A / (b * B)) + b * np.log(C / 6)) / (a + b)
        assert row.N_median == pytest.approx(np.exp(np.median(log_N)), rel=1e-6)
        assert row.D_median * row.N_median == pytest.approx(C / 6, rel=1e-12)  # the plan spends the budget
        assert row.N_lower <= row.N_median <= row.N_upper
    assert np.all(np.diff(table.N_median) > 0) and np.all(np.diff(table.loss_median) < 0)
    assert table.loss_median.iloc[-1] > np.median(post["E"].values)


def test_optimal_allocation_with_extreme_exponents_stays_finite():
    params = {"E": np.array([1.7, 1.7, 0.5]), "A": np.array([1e6, 5.0, 406.4]), "B": np.array([1e-2, 1e8, 410.7]),
              "alpha": np.array([1.5, 0.05, 0.34]), "beta": np.array([0.05, 1.5, 0.28])}
    out = bs.optimal_allocation("chinchilla", params, np.array([1e15, 1e22, 1e30]))
    for key in ("N", "D", "loss", "tokens_per_param"):
        assert np.all(np.isfinite(out[key])) and np.all(out[key] > 0), key
    np.testing.assert_allclose(6 * out["N"] * out["D"], np.broadcast_to([1e15, 1e22, 1e30], out["N"].shape),
                               rtol=1e-9)


# ------------------------------------------------------------------ interrupting a fit
def test_keyboard_interrupt_during_a_fit_raises_cleanly_and_the_session_stays_usable(synthetic_fit, synthetic_runs):
    model = bs.ScalingModel("chinchilla")  # the same graph as synthetic_fit: compiled already
    # Ctrl-C after 2 s, pressed again every second until the fit stops: a signal that lands while the
    # interpreter cannot raise (inside a finalizer, say) is lost, as in any Python program, and a user presses
    # again. Once one lands, the fit must stop at once and leave the session usable. The handler raises
    # KeyboardInterrupt as Python's own does, and stops raising once the test has seen the interrupt, so a press
    # still in flight cannot hit the test itself.
    armed, stopped = [True], threading.Event()

    def interrupt(signum, frame):
        if armed[0]:
            raise KeyboardInterrupt

    def press():
        for i in range(20):
            if stopped.wait(2.0 if i == 0 else 1.0):
                return
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, interrupt)
    presser = threading.Thread(target=press, daemon=True)
    t0 = time.perf_counter()
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(synthetic_runs, draws=200_000, tune=1000, random_seed=5)  # minutes, if not interrupted
    finally:
        armed[0] = False
        stopped.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - t0 < 30, "the interrupt took effect only when the fit ended"
    # same seed, same data: the fit after the interrupt is exactly the fixture's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        again = model.fit(synthetic_runs, random_seed=2)
    np.testing.assert_array_equal(again.posterior["alpha"].values, synthetic_fit.posterior["alpha"].values)
    assert again.summary().loc["alpha", "median"] == pytest.approx(TRUE_CHINCHILLA["alpha"], abs=0.03)


# ------------------------------------------------------------------ seeds and sampler settings, before any work
from bayescale.analysis import checks as _checks, hierarchy as _hierarchy, planning as _planning  # noqa: E402
from bayescale.analysis import risk as _risk  # noqa: E402
from bayescale.many import batch as _batch, executors as _executors  # noqa: E402
from bayescale.base.validation import MAX_SEED  # noqa: E402

_RUNS = pd.DataFrame({"N": np.geomspace(1e8, 1e10, 8), "D": np.geomspace(2e9, 2e11, 8),
                      "loss": np.linspace(3.2, 2.2, 8), "k": ["a", "b"] * 4})
_GROUPS = dict(E=1.7, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
_NEW = {"N": [1e10], "D": [2e11]}
# Every public seed argument. A fit is not needed: the seed must be refused before the object is touched,
# so methods are called on None.
SEEDED = {
    "ScalingModel.fit": lambda s: bs.ScalingModel("chinchilla").fit(_RUNS, random_seed=s),
    "fit_many": lambda s: bs.fit_many(bs.ScalingModel("chinchilla"), _RUNS, by="k", random_seed=s),
    "ScalingFit.param_draws": lambda s: bs.ScalingFit.param_draws(None, random_seed=s),
    "ScalingFit.predict_draws": lambda s: bs.ScalingFit.predict_draws(None, _NEW, random_seed=s),
    "ScalingFit.predict": lambda s: bs.ScalingFit.predict(None, _NEW, random_seed=s),
    "ScalingFit.risk": lambda s: bs.ScalingFit.risk(None, 1e22, target=2.5, random_seed=s),
    "ScalingFit.budget_for": lambda s: bs.ScalingFit.budget_for(None, 2.5, random_seed=s),
    "risk.risk": lambda s: _risk.risk(None, 1e22, target=2.5, random_seed=s),
    "risk.budget_for": lambda s: _risk.budget_for(None, 2.5, random_seed=s),
    "planning.posterior_params": lambda s: _planning.posterior_params(None, random_seed=s),
    "hierarchy.group_param_draws": lambda s: _hierarchy.group_param_draws(None, ["g"], random_seed=s),
    "hierarchy.simulate_groups": lambda s: _hierarchy.simulate_groups([3, 3], _GROUPS, random_seed=s),
    "checks.prior_predictive": lambda s: _checks.prior_predictive(bs.ScalingModel("chinchilla"), _RUNS,
                                                                  random_seed=s),
    "checks.posterior_predictive": lambda s: _checks.posterior_predictive(None, random_seed=s),
    "sbc": lambda s: bs.sbc(bs.ScalingModel("chinchilla"), _RUNS, random_seed=s),
    "Approach3": lambda s: bs.Approach3(random_seed=s),
    "LeastSquares": lambda s: bs.LeastSquares(random_seed=s),
    "PointModel": lambda s: bs.PointModel(random_seed=s),
    "PointFit.bootstrap": lambda s: bs.PointFit.bootstrap(None, 10, random_seed=s),
    "PointFit.predict": lambda s: bs.PointFit.predict(None, _NEW, random_seed=s),
    "FitCollection.predict": lambda s: bs.FitCollection.predict(None, _NEW, random_seed=s),
    "FitCollection.risk": lambda s: bs.FitCollection.risk(None, 1e22, target=2.5, random_seed=s),
    "batch.key_seed": lambda s: _batch.key_seed(s, "a"),
    "backtest": lambda s: bs.backtest({"A3": bs.Approach3()}, _RUNS, "C", cutoff=1e20, random_seed=s),
    "calibrate": lambda s: bs.calibrate({"A3": bs.Approach3()}, random_seed=s),
    "FormUncertainty.standard_draws": lambda s: bs.FormUncertainty().standard_draws(6, s),
}
BAD_SEEDS = [-1, "abc", 1.5, True, 99999999999999999999999, MAX_SEED + 1, np.float64(3.0), [1, 2]]


@pytest.mark.parametrize("entry", sorted(SEEDED))
@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_every_public_seed_is_checked_before_any_work(entry, seed):
    name = "seed" if entry == "FormUncertainty.standard_draws" else "random_seed"
    with pytest.raises(ValueError, match=f"^{name} must be None or an integer from 0 to {MAX_SEED}, got ") as info:
        SEEDED[entry](seed)
    assert repr(seed) in str(info.value)


def test_the_largest_seed_is_usable():
    assert len(_hierarchy.simulate_groups([3, 3], _GROUPS, random_seed=MAX_SEED)) == 6
    assert _batch.key_seed(MAX_SEED, "a") >= 0


@pytest.mark.parametrize("setting, value", [("draws", 0), ("draws", 1.5), ("tune", -1), ("tune", True),
                                            ("chains", 0), ("cores", 0), ("cores", -2), ("cores", 1.5),
                                            ("target_accept", 0), ("target_accept", 1.5), ("target_accept", "x"),
                                            ("target_accept", float("nan")), ("progressbar", "no"),
                                            ("escalate", 2)])
@pytest.mark.parametrize("entry", ["fit", "fit_many"])
def test_sampler_settings_are_checked_before_any_work(entry, setting, value):
    model = bs.ScalingModel("chinchilla")
    call = (lambda **kw: model.fit(_RUNS, **kw)) if entry == "fit" else (
        lambda **kw: bs.fit_many(model, _RUNS, by="k", **kw))
    with pytest.raises((ValueError, TypeError), match=f"^{setting} must be .*got {re.escape(repr(value))}$"):
        call(**{setting: value})


@pytest.mark.parametrize("priors", [[1, 2], "E", 3, ("alpha", 1)])
def test_priors_must_be_a_mapping(priors):
    with pytest.raises(SpecError, match=r"priors must be a mapping .* got"):
        bs.ScalingModel("chinchilla", priors=priors)


@pytest.mark.parametrize("priors, says", [({3: bs.priors.LogNormal(0, 1)}, "no parameter 3"),
                                          ({"E": 1.0}, "prior for 'E' must be a bayescale.core.priors object"),
                                          ({"E": "LogNormal"}, "prior for 'E'")])
def test_prior_keys_and_values_of_the_wrong_type_are_named(priors, says):
    with pytest.raises(SpecError, match=re.escape(says)):
        bs.ScalingModel("chinchilla", priors=priors)


def test_fit_many_from_a_script_without_a_main_guard_says_so(tmp_path):
    """Workers re-run an unguarded script, which calls fit_many again: one error naming the guard."""
    script = tmp_path / "batch_script.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, pandas as pd, bayescale as bs
        N = np.geomspace(1e8, 1e10, 8)
        runs = pd.DataFrame({"N": N, "D": 20 * N, "loss": 1.7 + 400 / N**0.34, "k": ["a", "b"] * 4})
        bs.fit_many(bs.ScalingModel("chinchilla"), runs, by="k", draws=20, tune=20, chains=1, progressbar=False)
    """))
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(bs.__file__))}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1
    assert last.startswith("RuntimeError: fit_many was called while its worker processes start")
    assert str(script) in last and 'if __name__ == "__main__":' in last
    assert "AttributeError" not in done.stderr


def test_a_guarded_script_is_not_mistaken_for_an_unguarded_one(tmp_path, monkeypatch):
    import types

    for text, unguarded in [("import bayescale\nbayescale.fit_many\n", True),
                            ("def main():\n    pass\nif __name__ == '__main__':\n    main()\n", False),
                            ("if '__main__' == __name__:\n    pass\n", False)]:
        script = tmp_path / "s.py"
        script.write_text(text)
        fake = types.ModuleType("__main__")
        fake.__file__ = str(script)
        monkeypatch.setitem(sys.modules, "__main__", fake)
        assert (_executors.unguarded_main_script() == str(script)) is unguarded


# ------------------------------------------------------------------ sizes
def test_a_ladder_beyond_the_run_cap_is_refused_before_any_work():
    """A 1,000,000-run ladder ran for minutes with no output (and its pointwise log-likelihood alone would need
    32 GB): refused at once, with the cap and what to do instead."""
    from bayescale.fitting import model as model_module
    n = model_module.MAX_RUNS + 1
    N = np.geomspace(1e7, 1e10, n)
    runs = pd.DataFrame({"N": N, "D": 20 * N, "loss": 2.0 + 400 * N**-0.3})
    with pytest.raises(DataError, match=rf"{n:,} runs; one Bayesian fit takes at most {model_module.MAX_RUNS:,} "
                                        r"\(bayescale.fitting.model.MAX_RUNS\).*PointModel"):
        bs.ScalingModel("chinchilla").fit(runs)  # refused in _check_size, before the graph or the sampler


def test_too_many_groups_are_refused_with_a_pointer_to_fit_many():
    from bayescale.fitting import model as model_module
    groups = model_module.MAX_GROUPS + 1
    N = np.tile([1e8, 1e9], groups)
    runs = pd.DataFrame({"N": N, "D": 20 * N, "loss": 2.0 + 400 * N**-0.3, "group": np.repeat(np.arange(groups), 2)})
    with pytest.raises(DataError, match=rf"{groups:,} groups; one hierarchical fit takes at most .*fit_many"):
        bs.ScalingModel("chinchilla", pooling={"E": "partial"}).fit(runs)
    # The same runs without pooling are one ordinary fit (the cap is on groups, not on labelled runs).
    assert bs.ScalingModel("chinchilla")._check_size(bs.load_runs(runs), 4, 1000) is None


def test_progress_is_shown_when_asked(synthetic_runs, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bs.ScalingModel("chinchilla").fit(synthetic_runs, draws=20, tune=20, chains=1, random_seed=0, escalate=False,
                                          progressbar=True)
    assert "posterior mode (120 runs): starts" in capsys.readouterr().err


# ------------------------------------------------------------------ data that contradict the law's assumptions
def _grid_runs():
    N, D = np.meshgrid([1e8, 3e8, 1e9], [2e9, 6e9, 2e10])
    frame = pd.DataFrame({"N": N.ravel(), "D": D.ravel()})
    frame["loss"] = bs.get_law("chinchilla").loss({"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()},
                                                  TRUE_CHINCHILLA)
    return frame


def test_repeated_rows_and_loss_rising_with_scale_warn_before_any_sampling(monkeypatch):
    import bayescale.fitting.model

    def no_sampling(*args, **kwargs):
        raise RuntimeError("sampled")

    monkeypatch.setattr(bayescale.fitting.model, "run_sampler", no_sampling)  # where ScalingModel.fit finds it
    runs = _grid_runs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DataAssumptionWarning)  # clean data: silent
        with pytest.raises(RuntimeError, match="sampled"):
            bs.ScalingModel("chinchilla").fit(runs)
    doubled = pd.concat([runs, runs])
    with pytest.warns(bs.DataAssumptionWarning, match=r"9 of 18 rows repeat an earlier row exactly .*position 9 "
                                                      r"\(label 0\) = the row at position 0"):
        with pytest.raises(RuntimeError, match="sampled"):
            bs.ScalingModel("chinchilla").fit(doubled)
    rising = runs.copy()
    rising.loc[5, "loss"] *= 1.3  # N = 1e9 at D = 6e9: 30% above the smaller models at that D
    with pytest.warns(bs.DataAssumptionWarning, match=r"loss rises with N at the same D .* row 5 \(N = 1e\+09\) "
                                                      r"has loss .* above row 4 \(N = 3e\+08"):
        check_assumptions(bs.load_runs(rising))
    checkpoints = pd.DataFrame({"run": ["a"] * 4, "N": 1e8, "D": [1e9, 2e9, 4e9, 8e9],
                                "loss": [3.5, 3.3, 4.2, 3.1]})  # a diverged checkpoint of one run
    with pytest.warns(bs.DataAssumptionWarning, match=r"loss rises with D at the same N .* row 2 \(D = 4e\+09\)"):
        check_assumptions(bs.load_runs(checkpoints))


def test_the_bundled_real_runs_do_not_trip_the_data_checks():
    porian = bs.datasets.load_porian()
    sources = [bs.datasets.load_chinchilla(), bs.datasets.load_chinchilla(drop_outliers=True),
               bs.datasets.load_datablations(), porian.assign(group=porian["config"])]
    sources += [porian[porian["config"] == c] for c in bs.datasets.porian_configs()]
    for frame in sources:
        assert check_assumptions(bs.load_runs(frame)) == []
    # all 15 Porian ladders in one table without groups: different ladders disagree by up to 37%
    with pytest.warns(bs.DataAssumptionWarning, match="loss rises with D at the same N"):
        check_assumptions(bs.load_runs(porian))


# ------------------------------------------------------------------ specs that leave the sampler no finite start
@pytest.mark.parametrize("prior, says", [
    ({"family": "LogNormal", "mu": 1e308, "sigma": 1.0}, r"mu = 1e\+308 is too large"),
    ({"family": "LogNormal", "mu": 800.0, "sigma": 1.0}, r"median is inf"),
    ({"family": "LogNormal", "mu": 0.5, "sigma": 5e-324}, r"sigma = 5e-324 is subnormal"),
    ({"family": "LogNormal", "mu": 0.5, "sigma": 1e-200}, r"sigma = 1e-200 is too small"),
    ({"family": "HalfNormal", "sigma": 5e-324}, r"sigma = 5e-324 is subnormal"),
    ({"family": "Gamma", "alpha": 1e308, "beta": 1.0}, r"alpha = 1e\+308 is too large"),
    ({"family": "Exponential", "lam": 1e308}, r"lam = 1e\+308 is too large"),
    ({"family": "Uniform", "lower": 0.0, "upper": 5e-324}, r"upper = 5e-324 is subnormal"),
    ({"family": "LogNormal", "mu": 0.0, "sigma": 1.0, "at": 1e308}, r"at = 1e\+308 is too large"),
])
def test_priors_without_a_finite_starting_point_are_refused_when_read(prior, says, tmp_path):
    spec = {"law": "chinchilla", "priors": {"E" if "at" not in prior else "A": prior}}
    with pytest.raises(SpecError, match=rf"prior of '[EA]': {prior['family']}.*{says}.*expected"):
        model_from_dict(spec)
    path = tmp_path / "spec.toml"
    items = ", ".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in prior.items())
    path.write_text(f'law = "chinchilla"\n[priors]\n{"E" if "at" not in prior else "A"} = {{ {items} }}\n'
                    .replace("'", '"'))
    with pytest.raises(SpecError, match=says):
        bs.ScalingModel.from_spec(path)


def test_a_formula_with_a_1e308_factor_is_refused_when_read():
    with pytest.raises(SpecError, match=r"number 1e308 is outside the magnitudes .*\(1e-50 to 1e\+50"):
        model_from_dict({"law": {"name": "edited", "formula": "E + 1e308 * A / N**alpha", "inputs": ["N"],
                                 "parameters": {"E": {"kind": "irreducible"}, "alpha": {"kind": "exponent"},
                                                "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]}}}})


# ------------------------------------------------------------------ unclear errors made clear
def test_semicolon_csv_with_decimal_commas_and_utf16_csv_are_read(tmp_path):
    runs = pd.DataFrame({"N": [1.5e8, 4e8, 1e9], "D": [2e9, 8e9, 2e10], "loss": [3.14, 2.8, 2.6]})
    expected = bs.load_runs(runs).frame
    runs.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    assert "3,14" in (tmp_path / "semi.csv").read_text()
    runs.to_csv(tmp_path / "utf16.csv", encoding="utf-16", index=False)
    (tmp_path / "utf16_nobom.csv").write_bytes(runs.to_csv(index=False).encode("utf-16-le"))
    for name in ("semi.csv", "utf16.csv", "utf16_nobom.csv"):
        pd.testing.assert_frame_equal(bs.load_runs(tmp_path / name).frame, expected)
    (tmp_path / "latin1.csv").write_bytes("N,D,loss,note\n1e8,2e9,3.1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv' is not UTF-8 text: byte 0xe9 at offset 29 .*save the file "
                                        "as UTF-8"):
        bs.load_runs(tmp_path / "latin1.csv")


def test_saving_over_a_read_only_file_names_it(saved, tmp_path, monkeypatch):
    import bayescale.base.files

    target = tmp_path / "kept.nc"
    target.write_bytes(b"keep me")
    target.chmod(0o444)
    real = os.access
    monkeypatch.setattr(bayescale.base.files.os, "access",  # root may write anywhere: ask as an ordinary user would
                        lambda p, mode, **kw: False if os.fspath(p) == str(target) else real(p, mode, **kw))
    fit = bs.load(saved)
    with pytest.raises(bs.FileWriteError, match=rf"cannot write fit to '{re.escape(str(target))}': the file is not "
                                                r"writable \(mode 444\)"):
        fit.save(target)
    assert target.read_bytes() == b"keep me" and [p.name for p in tmp_path.iterdir()] == ["kept.nc"]


def test_a_cache_folder_variable_naming_no_user_is_a_clear_error(monkeypatch):
    from bayescale.base.compiled import cache_dir

    monkeypatch.setenv("BAYESCALE_CACHE_DIR", "~nosuchuser_bayescale/x")
    with pytest.raises(ValueError, match=r"environment variable BAYESCALE_CACHE_DIR is '~nosuchuser_bayescale/x', "
                                         r"whose '~nosuchuser_bayescale' names no user"):
        cache_dir()
    with pytest.raises(ValueError, match=r"cache_dir is '~nosuchuser_bayescale'"):
        cache_dir("~nosuchuser_bayescale")


def test_checkpoints_all_mid_cosine_are_a_data_error_before_any_work():
    N = np.repeat([1e8, 2e8, 4e8, 8e8], 3)
    frame = pd.DataFrame({"run": np.repeat(list("abcd"), 3), "N": N, "D": np.tile([1e9, 2e9, 3e9], 4),
                          "D_total": 1e10, "schedule": "cosine"})
    frame["loss"] = bs.get_law("chinchilla").loss({"N": N, "D": frame["D"].to_numpy()}, TRUE_CHINCHILLA)
    with pytest.raises(DataError, match=r"12 of 12 rows are checkpoints mid-way through a cosine schedule .* 0 "
                                        r"row\(s\) remain, and the law has 7 parameters"):
        bs.ScalingModel("chinchilla").fit(frame)


def test_targets_below_the_irreducible_loss_and_caps_below_the_budget_are_argument_errors(synthetic_fit):
    grid = bs.analysis.nextrun.candidate_grid((1e8, 1e9), (2e9, 2e10), points=3)
    with pytest.raises(ValueError, match=r"target=1 lies at or below the fit's irreducible loss in 100% of its "
                                         r"draws \(median 1\.8"):
        synthetic_fit.recommend_runs(grid, quantity="budget_for", target=1.0)
    with pytest.raises(ValueError, match=r"max_compute=1e\+20 is not above the budget 1e\+24"):
        synthetic_fit.marginal_returns(1e24, max_compute=1e20)
