"""Checks of published tables: nothing unusable is reported silently.

Every table that :func:`~bayescale.core.allocation.allocate`,
:func:`~bayescale.analysis.risk.risk`, :func:`~bayescale.analysis.risk.budget_for` and the
point fits return passes through :func:`check_table` before it is handed
out. It issues one :class:`~bayescale.base.errors.DegenerateResultWarning` per
table that names the columns and rows concerned and why, when

- a number is not finite (NaN or infinite), or
- a compute-optimal plan has fewer than one parameter or one token.

:func:`draw_problems` explains non-finite results from the parameter draws
behind them (draws that overflow or leave a law's domain).
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import DegenerateResultWarning
from .errors import warn_user

__all__ = ["check_table", "draw_problems", "MAX_ROWS_NAMED"]

#: Rows named in a warning before the rest are counted.
MAX_ROWS_NAMED = 4


def _row_names(frame, label) -> list:
    """How each row is named in a message: its budget, target or plan, with its group."""
    if label is None:
        label = next((c for c in ("C", "target", "label") if c in frame.columns), None)
    names = []
    for i in range(len(frame)):
        if label is None:
            name = f"row {i}"
        else:
            v = frame[label].iloc[i]
            name = f"{label} = {v:.3g}" if isinstance(v, (float, np.floating)) else f"{label} = {v}"
        if "group" in frame.columns:
            name = f"group {frame['group'].iloc[i]!s}, {name}"
        names.append(name)
    return names


def _list(names, rows) -> str:
    shown = [names[i] for i in rows[:MAX_ROWS_NAMED]]
    more = len(rows) - len(shown)
    return "; ".join(shown) + (f" and {more} more row{'s' if more > 1 else ''}" if more > 0 else "")


def check_table(frame, what, *, plan=None, why=None, label=None, problems=(), stacklevel=2) -> list:
    """Warn once about the numbers of a published table that cannot be used as they stand.

    Parameters
    ----------
    frame : DataFrame
        The table about to be returned.
    what : str
        Its name in the message (``"allocate"``, ``"risk"`` ...).
    plan : (str, str), optional
        The columns holding a plan's parameters and tokens; a value below 1
        is reported.
    why : str or callable, optional
        Why values are not finite, when the caller knows (e.g. from
        :func:`draw_problems`); a callable is called only when needed.
    label : str, optional
        Column that names the rows; default ``C``, ``target`` or ``label``.
    problems : sequence of str
        Problems of the whole table the caller knows of (e.g. a fit that did
        not converge), reported first in the same warning.
    stacklevel : int

    Returns
    -------
    list of str
        The problems found (empty: nothing was issued).

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> t = pd.DataFrame({"C": [1e20, 1e24], "N_median": [0.2, 4e10], "D_median": [8e19, 4e12],
    ...                   "loss_upper": [float("inf"), 2.1]})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     problems = check_table(t, "allocate", plan=("N_median", "D_median"))
    >>> print(w[0].message)  # doctest: +NORMALIZE_WHITESPACE
    allocate: not finite: loss_upper at C = 1e+20 (the posterior draws give non-finite values there);
    less than one parameter: N_median = 0.2 at C = 1e+20 (the budget is too small for this law's optimum,
    or the fit is degenerate: see its summary and diagnostics)
    """
    problems = list(problems)
    names = _row_names(frame, label)
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "fc"]
    by_rows: dict = {}
    for col in numeric:
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(frame[col].to_numpy()))
        if bad.size:
            by_rows.setdefault(tuple(bad), []).append(col)
    if by_rows and callable(why):
        why = why()
    for rows, cols in by_rows.items():
        problems.append(f"not finite: {', '.join(cols)} at {_list(names, list(rows))} "
                        f"({why or 'the posterior draws give non-finite values there'})")
    if plan is not None:
        for col, unit in zip(plan, ("parameter", "token")):
            if col not in frame.columns:
                continue
            values = frame[col].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                small = np.flatnonzero(values < 1)
            if small.size:
                problems.append(
                    f"less than one {unit}: {col} = {values[small[0]]:.3g}"
                    + (f" (smallest {values[small].min():.3g})" if small.size > 1 else "")
                    + f" at {_list(names, list(small))} (the budget is too small for this law's optimum, "
                    "or the fit is degenerate: see its summary and diagnostics)")
    if problems:
        warn_user(DegenerateResultWarning(f"{what}: " + "; ".join(problems)), stacklevel=stacklevel + 1)
    return problems


def draw_problems(params, values=None) -> str | None:
    """Say which parameter draws make results non-finite, or None when all are usable.

    Parameters
    ----------
    params : mapping of str to array
        Parameter draws by name.
    values : array, optional
        A result computed from the draws (e.g. the optimal N per draw and
        budget), shaped ``draws + budgets``: counts the draws whose result
        is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> draw_problems({"A": np.array([1.0, np.inf]), "alpha": np.array([0.3, -0.1])})
    'A is not finite in 1 of 2 draws; alpha is not positive in 1 of 2 draws'
    """
    bits = []
    for name, v in params.items():
        v = np.asarray(v, dtype=float)
        total = v.size
        nonfinite = int(np.sum(~np.isfinite(v)))
        if nonfinite:
            bits.append(f"{name} is not finite in {nonfinite} of {total} draws")
        with np.errstate(invalid="ignore"):
            nonpositive = int(np.sum(v <= 0))
        if nonpositive:
            bits.append(f"{name} is not positive in {nonpositive} of {total} draws")
    if values is not None:
        v = np.asarray(values, dtype=float)
        bad = int(np.sum(~np.isfinite(v)))
        if bad and not bits:
            bits.append(f"{bad} of {v.size} draw-and-budget values are not finite (overflow)")
    return "; ".join(bits) or None


def rewarn(caught, category, stacklevel):
    """Issue again, once each, the warnings of `category` among `caught` (others are issued as they were)."""
    seen = set()
    for w in caught:
        if not issubclass(w.category, category):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            warn_user(w.message, stacklevel=stacklevel + 1)
