"""Run data that contradict what every scaling law assumes, found before any fitting.

Two checks, each a :class:`~bayescale.base.errors.DataAssumptionWarning` naming the rows:

* a row that repeats another exactly (the same inputs, group, run and loss): a table concatenated with
  itself counts each run twice, which halves the noise the fit believes in;
* loss that rises with scale beyond noise: a larger N at the same D (and U, group), or a larger D at the same
  N (which includes a run's later checkpoints), with a log loss more than :data:`RISE_MARGIN` higher.

Rows with repeated data (``D > U``) are not compared: training for many epochs overfits, and their loss
really rises with N and D (Muennighoff et al. 2023: up to +0.76 in log loss in the bundled runs).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..base.errors import DataAssumptionWarning
from ..base.errors import warn_user

__all__ = ["check_assumptions", "RISE_MARGIN"]

#: Rise in log loss beyond which a larger scale's loss counts as clearly higher (0.15: 16% higher loss).
#: Measured on the bundled real runs (larger N at the same D, or larger D at the same N, same U and group):
#: Chinchilla (Hoffmann et al. 2022, digitised) at most +0.0045 (digitisation noise, 202 comparisons);
#: the 15 Porian et al. 2024 ladders at most -0.006 (1506 comparisons: never a rise); the single-epoch
#: runs of Muennighoff et al. 2023 (D <= U) at most +0.129 (2.8e9 parameters on 1e8 tokens: 7.52 against
#: 6.61; 0.097 for 8.7e9 parameters on 1.2e10 tokens), kept below the margin. All 15 Porian ladders pooled
#: without a group column rise by up to +0.32: different ladders, which the check rightly reports.
RISE_MARGIN = 0.15
#: Relative difference within which two runs' D (or N) count as the same.
SAME_RTOL = 1e-4
MAX_NAMED = 10


def _label(index, i) -> str:
    """The row's index label, or its position when labels repeat (a frame concatenated with itself)."""
    label = index[i]
    label = label.item() if isinstance(label, np.generic) else label
    if not index.is_unique:
        return f"the row at position {i} (label {label!r})"
    return f"row {label}" if isinstance(label, (int, np.integer)) else f"row {label!r}"


def _duplicates(frame: pd.DataFrame) -> str | None:
    keys = [c for c in ("N", "D", "C", "U", "group", "run", "loss") if c in frame.columns]
    dup = frame.duplicated(subset=keys, keep="first").to_numpy()
    if not dup.any():
        return None
    first = frame.groupby(keys, observed=True, sort=False).ngroup().to_numpy()
    lead = {}
    for i, g in enumerate(first):
        lead.setdefault(g, i)
    rows = np.flatnonzero(dup)
    named = ", ".join(f"{_label(frame.index, i)} = {_label(frame.index, lead[first[i]])}" for i in rows[:MAX_NAMED])
    more = f" and {len(rows) - MAX_NAMED} more" if len(rows) > MAX_NAMED else ""
    return (f"{len(rows)} of {len(frame)} rows repeat an earlier row exactly ({', '.join(keys)}): {named}{more}; "
            "each counts twice (a fit too sure), so drop them with frame.drop_duplicates()")


def _rises(frame: pd.DataFrame, along: str, fixed: str) -> list[tuple[int, int, float]]:
    """(row, lower-scale row, rise in log loss) where a larger `along` at the same `fixed` has a higher loss."""
    keys = pd.DataFrame({"f": np.round(np.log(frame[fixed].to_numpy(float)) / SAME_RTOL).astype(np.int64)})
    for col in ("group", "U"):
        if col in frame.columns:
            keys[col] = frame[col].astype(str).to_numpy() if col == "group" else frame[col].to_numpy(float)
    x, y = frame[along].to_numpy(float), np.log(frame["loss"].to_numpy(float))
    found = []
    for rows in keys.groupby(list(keys.columns), sort=False).indices.values():
        if len(rows) < 2:
            continue
        rows = rows[np.argsort(x[rows], kind="stable")]
        best = None  # the row of lowest loss among those of strictly smaller `along`
        for block in np.split(rows, np.flatnonzero(np.diff(x[rows]) > 0) + 1):
            if best is not None:
                found += [(int(i), int(best), float(y[i] - y[best])) for i in block if y[i] - y[best] > RISE_MARGIN]
            low = block[np.argmin(y[block])]
            best = low if best is None or y[low] < y[best] else best
    return found


def check_assumptions(runs, stacklevel: int = 2) -> list[str]:
    """Warn about rows that repeat another, or whose loss rises with scale beyond noise.

    Parameters
    ----------
    runs : RunData
        Validated runs (the rows a law is about to be fitted to).
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    list of str
        The messages warned (empty when the data look consistent).

    Warns
    -----
    DataAssumptionWarning
        One per kind of problem, naming how many rows and which (index labels).

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> from bayescale.runs.data import load_runs
    >>> runs = load_runs(pd.DataFrame({"N": [1e8, 2e8, 1e8], "D": [2e9, 2e9, 2e9], "loss": [3.0, 3.6, 3.0]}))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     for message in check_assumptions(runs):
    ...         print(message.split(": ")[0])
    1 of 3 rows repeat an earlier row exactly (N, D, C, loss)
    loss rises with N at the same D beyond noise in 1 place(s)
    """
    frame = runs.frame
    messages = []
    dup = _duplicates(frame)
    if dup:
        messages.append(dup)
    if {"N", "D", "loss"} <= set(frame.columns):
        comparable = frame
        if "U" in frame.columns:  # repeated data overfits: its loss really rises with N and D
            comparable = frame[frame["D"].to_numpy(float) <= frame["U"].to_numpy(float) * (1 + SAME_RTOL)]
        comparable = comparable.drop_duplicates(subset=[c for c in ("N", "D", "U", "group", "loss")
                                                        if c in comparable.columns])
        for along, fixed in (("N", "D"), ("D", "N")):
            found = _rises(comparable, along, fixed)
            if not found:
                continue
            idx, L = comparable.index, comparable["loss"].to_numpy(float)
            named = "; ".join(
                f"{_label(idx, i)} ({along} = {comparable[along].iloc[i]:.4g}) has loss {L[i]:.4g}, "
                f"{np.expm1(r):.0%} above {_label(idx, j)} ({along} = {comparable[along].iloc[j]:.4g}, "
                f"loss {L[j]:.4g})" for i, j, r in sorted(found, key=lambda t: -t[2])[:MAX_NAMED])
            more = f"; and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
            what = "later checkpoints, " if along == "D" and "run" in frame.columns else ""
            messages.append(
                f"loss rises with {along} at the same {fixed} beyond noise in {len(found)} place(s): {named}{more}; "
                f"mixed sources, {what}a mislabelled column or diverged runs? Give each source its own group, "
                "or fix or drop the rows")
    for message in messages:
        warn_user(message, DataAssumptionWarning, stacklevel=stacklevel + 1)
    return messages
