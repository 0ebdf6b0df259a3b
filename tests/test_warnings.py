"""Warnings point at the caller's line, say what and what to do in one short sentence, once per call."""

import warnings

import pandas as pd
import pytest

import bayescale as bs

#: Longest warning text allowed (one sentence: what happened and what to do).
MAX_CHARS = 170


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


def _check(caught, kinds):
    assert {w.category for w in caught} >= set(kinds), [str(w.message) for w in caught]
    for w in caught:
        assert w.filename == __file__, (w.filename, str(w.message))
        if w.category is not bs.ConvergenceWarning:  # lists one line per failed diagnostic
            assert len(str(w.message)) <= MAX_CHARS, str(w.message)
    texts = [(w.category, str(w.message)) for w in caught]
    assert len(texts) == len(set(texts)), texts  # each once per call


def test_fit_warnings_point_at_the_callers_line():
    runs = bs.datasets.load_chinchilla()  # the 5 outliers kept: heavy tails
    runs = pd.concat([runs, runs.iloc[:1]], ignore_index=True)  # a repeated row: a data assumption
    caught = _caught(lambda: bs.ScalingModel("chinchilla").fit(runs, draws=300, tune=300, random_seed=1,
                                                               progressbar=False))
    _check(caught, [bs.HeavyTailWarning, bs.DataAssumptionWarning])


def test_approach3_fit_warning_points_at_the_callers_line(chinchilla_runs):
    runs = pd.concat([chinchilla_runs, chinchilla_runs.iloc[:1]], ignore_index=True)
    _check(_caught(lambda: bs.Approach3().fit(runs)), [bs.DataAssumptionWarning])


@pytest.mark.parametrize("call", ["predict", "allocate", "risk", "budget_for", "marginal_returns"])
def test_table_warnings_point_at_the_callers_line(chinchilla_fit, call):
    calls = {"predict": lambda f: f.predict({"N": [4e11], "D": [8e12]}),
             "allocate": lambda f: f.allocate([1e24, 1e26]),
             "risk": lambda f: f.risk([1e26], target=1.9),
             "budget_for": lambda f: f.budget_for(1.9),
             "marginal_returns": lambda f: f.marginal_returns([1e26])}
    caught = _caught(lambda: calls[call](chinchilla_fit))
    _check(caught, [bs.ExtrapolationWarning])
    assert len(caught) == 1


def test_a_point_estimate_says_it_has_no_band(a3):
    caught = _caught(lambda: a3.allocate([1e24, 1e26]))
    _check(caught, [bs.ExtrapolationWarning])
    text = str(caught[0].message)
    assert "no band" in text and "read the bands" not in text


def test_warnings_from_a_namespace_without_a_module_loader():
    """A notebook cell's namespace has __spec__ None: the warning is still issued, at the cell's line."""
    from bayescale.base.errors import warn_user

    for namespace in ({"__name__": "__main__", "__spec__": None}, {"__name__": "__main__"},
                      {"__name__": "__main__", "__spec__": None, "__loader__": None}):
        namespace["warn_user"] = warn_user
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(compile("\nwarn_user('from a notebook cell', UserWarning)", "<cell>", "exec"), namespace)
        assert [str(w.message) for w in caught] == ["from a notebook cell"]
        assert caught[0].filename == "<cell>" and caught[0].lineno == 2
