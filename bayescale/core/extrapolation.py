"""How far a question lies from the runs a law was fitted on.

A scaling law is fitted on a ladder of small runs and asked about runs 100 to
10,000 times larger. How wrong its form may be there grows with that distance,
so every prediction, allocation and risk table says how far it reaches, in
decades (powers of ten) of compute C, parameters N and tokens D beyond the
fitted range.

:class:`Reach` is the fitted range; :func:`decades_beyond` measures new points
against it. Both are plain NumPy and pandas, used by the result objects and
their tables. :func:`annotate` adds the distance columns to a table and
issues one :class:`~bayescale.base.errors.ExtrapolationWarning` per table when a
row lies more than :data:`WARN_DECADES` outside the fitted range, or when a
plan's tokens per parameter lie outside those of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import warnings

import numpy as np
import pandas as pd

from ..base.errors import ExtrapolationWarning
from ..base.validation import FLOPS_PER_PARAM_TOKEN
from ..base.errors import warn_user
from ..base.units import format_count, format_flops

__all__ = ["Reach", "decades_beyond", "annotate", "warn_extrapolation", "extrapolation_message", "QUANTITIES", "WARN_DECADES"]

#: Quantities whose range is measured, in this order (``epochs`` = D / U, for runs with unique tokens U).
QUANTITIES = ("C", "N", "D", "epochs")

#: Extrapolation distance (decades of any quantity) past which tables warn. One decade beyond the
#: largest run is where leave-future-out errors on the bundled real ladders grow past the noise.
WARN_DECADES = 1.0


@dataclass(frozen=True)
class Reach:
    """The fitted range: smallest and largest C, N, D and tokens per parameter of the training runs.

    Attributes
    ----------
    lower, upper : dict
        ``{quantity: value}`` for each of ``C``, ``N``, ``D`` the runs have,
        and ``epochs`` (D / U) for runs with unique tokens ``U``.
    tokens_per_param : tuple of float
        Smallest and largest D / N of the runs (NaN without both N and D).

    Examples
    --------
    >>> import pandas as pd
    >>> reach = Reach.from_frame(pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10], "C": [1.2e18, 1.2e20]}))
    >>> reach.upper["C"], reach.tokens_per_param
    (1.2e+20, (20.0, 20.0))
    """

    lower: dict
    upper: dict
    tokens_per_param: tuple = (float("nan"), float("nan"))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Reach":
        """The range of the canonical columns of a run table (e.g. ``RunData.frame``)."""
        lower, upper = {}, {}
        columns = _with_epochs({q: frame[q] for q in ("C", "N", "D", "U") if q in frame})
        for q in QUANTITIES:
            if q in columns:
                values = np.asarray(columns[q], dtype=float)
                values = values[np.isfinite(values) & (values > 0)]
                if values.size:
                    lower[q], upper[q] = float(values.min()), float(values.max())
        tpp = (float("nan"), float("nan"))
        if "N" in frame and "D" in frame:
            ratio = frame["D"].to_numpy(dtype=float) / frame["N"].to_numpy(dtype=float)
            ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
            if ratio.size:
                tpp = (float(ratio.min()), float(ratio.max()))
        return cls(lower, upper, tpp)

    @classmethod
    def from_runs(cls, runs) -> "Reach":
        """The range of a :class:`~bayescale.RunData`."""
        return cls.from_frame(runs.frame)


def decades_beyond(reach: Reach, values: dict) -> pd.DataFrame:
    """Decades by which new points lie outside the fitted range, per quantity and overall.

    Parameters
    ----------
    reach : Reach
        The fitted range.
    values : dict
        ``{quantity: array}`` of the new points, for any of ``C``, ``N``,
        ``D``, ``epochs`` (missing ones are skipped; ``C`` is not derived
        here, ``epochs`` is, from ``D`` and ``U``).

    Returns
    -------
    DataFrame
        ``beyond_C``, ``beyond_N``, ``beyond_D`` (those measurable: present in
        both), each ``max(0, log10(x / largest), log10(smallest / x))``, and
        ``beyond``, their maximum: 0 inside the fitted range, 1 a tenfold
        step past its edge.

    Examples
    --------
    >>> reach = Reach({"C": 1e18, "N": 1e7}, {"C": 1e21, "N": 1e9})
    >>> decades_beyond(reach, {"C": [1e20, 1e24], "N": [1e9, 1e8]})
       beyond_C  beyond_N  beyond
    0       0.0       0.0     0.0
    1       3.0       0.0     3.0
    """
    cols = {}
    n = None
    values = _with_epochs(values)
    for q in QUANTITIES:
        if q in values and q in reach.upper:
            x = np.asarray(values[q], dtype=float).ravel()
            n = x.size
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                up = np.log10(x / reach.upper[q])
                down = np.log10(reach.lower[q] / x)
            dist = np.maximum(np.maximum(up, down), 0.0)
            cols[f"beyond_{q}"] = np.where(np.isfinite(x) & (x > 0), dist, np.nan)
    frame = pd.DataFrame(cols, index=pd.RangeIndex(n or 0))
    frame["beyond"] = frame.max(axis=1) if cols else 0.0
    return frame


def _with_epochs(values: dict) -> dict:
    """``values`` with ``epochs = D / U`` added where both are given and epochs is not."""
    if "epochs" in values or "D" not in values or "U" not in values:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        epochs = np.asarray(values["D"], dtype=float) / np.asarray(values["U"], dtype=float)
    return {**values, "epochs": epochs}


# ------------------------------------------------------------------ tables
#: What the bands of a table hold far out: with the model's form uncertainty, without it, and for a point
#: estimate (no band at all).
_BANDS_HOLD = {
    True: "bands include form uncertainty, scored out of sample to ~2 decades",
    False: "form uncertainty is off, so the bands hold only if the law's form does",
    None: "a point estimate carries no band for the law's form there",
}
_WORDS = {"C": "compute", "N": "parameters", "D": "tokens", "epochs": "repeated epochs"}


def _edge(q, value) -> str:
    if q == "epochs":
        return f"{value:.3g} epochs"
    return format_flops(value) if q == "C" else f"{format_count(value)} {_WORDS[q]}"


def _table_values(frame, n, d, c, flops_per_param_token) -> dict:
    """The C, N, D (and epochs or U) columns of a table as arrays; C = k N D where it is missing."""
    values = {q: frame[col].to_numpy(dtype=float) for q, col in (("N", n), ("D", d), ("C", c)) if col in frame}
    if "C" not in values and "N" in values and "D" in values:
        values["C"] = float(flops_per_param_token) * values["N"] * values["D"]
    for q, col in (("epochs", "epochs_median"), ("epochs", "epochs"), ("U", "U")):
        if col in frame and q not in values:
            values[q] = frame[col].to_numpy(dtype=float)
    return values


def annotate(frame: pd.DataFrame, runs, *, n="N", d="D", c="C", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
             tokens_per_param=None, what="table", warn=True, form=None, bands=True, stacklevel=2) -> pd.DataFrame:
    """Add the extrapolation columns to a prediction, allocation or risk table, and warn past the threshold.

    Parameters
    ----------
    frame : DataFrame
        The table, one row per point; changed in place and returned.
    runs : RunData or Reach
        The fitted runs (or their range).
    n, d, c : str
        Columns holding N, D and C (e.g. ``"N_median"`` in an allocation
        table). Missing columns are skipped; where ``C`` is missing and both
        N and D are present, C = k N D.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    tokens_per_param : str, optional
        Column of the rows' tokens per parameter (e.g.
        ``"tokens_per_param_median"``): adds ``tokens_per_param_outside``,
        True where it lies outside ``Reach.tokens_per_param`` of the runs.
    what : str
        Name of the table in the warning (``"fit.predict"``).
    warn : bool, default True
        Issue the :class:`~bayescale.base.errors.ExtrapolationWarning`
        (:func:`warn_extrapolation`).
    form : FormUncertainty, optional
        The form uncertainty the table's bands carry (the fit's
        ``model.form_uncertainty``); the warning says what the bands hold.
    bands : bool, default True
        False for a point estimate's table (no interval): the warning says
        so instead of describing bands.
    stacklevel : int, default 2
        As for :func:`warnings.warn` called by the caller of this function.

    Returns
    -------
    DataFrame
        ``frame`` with ``beyond_C``, ``beyond_N``, ``beyond_D`` (those
        measurable), ``beyond`` (their maximum; NaN where the row has no
        finite inputs) and, with ``tokens_per_param``,
        ``tokens_per_param_outside``.

    Examples
    --------
    >>> import pandas as pd
    >>> reach = Reach({"C": 1e18, "N": 1e7, "D": 1e9}, {"C": 1e21, "N": 1e9, "D": 1e11}, (1.0, 100.0))
    >>> t = annotate(pd.DataFrame({"N": [1e8], "D": [2e9]}), reach)
    >>> t[["beyond_C", "beyond_N", "beyond_D", "beyond"]].round(2).to_dict("records")
    [{'beyond_C': 0.0, 'beyond_N': 0.0, 'beyond_D': 0.0, 'beyond': 0.0}]
    """
    reach = runs if isinstance(runs, Reach) else Reach.from_runs(runs)
    values = _table_values(frame, n, d, c, flops_per_param_token)
    dist = decades_beyond(reach, values)
    for q in QUANTITIES:
        col = f"beyond_{q}"
        if col in dist:
            frame[col] = dist[col].to_numpy()
    frame["beyond"] = dist["beyond"].to_numpy() if len(dist) == len(frame) else np.nan
    if tokens_per_param is not None:
        lo, hi = reach.tokens_per_param
        tpp = frame[tokens_per_param].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            frame["tokens_per_param_outside"] = (tpp < lo) | (tpp > hi) if np.isfinite(lo) else False
    if warn:
        warn_extrapolation(frame, reach, what=what, n=n, d=d, c=c, tokens_per_param=tokens_per_param,
                           flops_per_param_token=flops_per_param_token,
                               form=form, bands=bands, stacklevel=stacklevel + 1)
    return frame


def extrapolation_message(frame: pd.DataFrame, reach: Reach, *, what="table", n="N", d="D", c="C",
                          tokens_per_param=None, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, form=None,
                          bands=True) -> str | None:
    """The text of the warning :func:`warn_extrapolation` issues for an annotated table, or None."""
    parts = []
    far = frame["beyond"].to_numpy(dtype=float) if "beyond" in frame else np.array([])
    far = np.where(np.isfinite(far), far, -np.inf)
    over = far > WARN_DECADES
    if over.any():
        row = int(np.argmax(far))
        cols = {q: frame[f"beyond_{q}"].to_numpy(dtype=float)[row] for q in QUANTITIES if f"beyond_{q}" in frame}
        q = max(cols, key=lambda k: cols[k] if np.isfinite(cols[k]) else -np.inf)
        x = float(_with_epochs(_table_values(frame, n, d, c, flops_per_param_token))[q][row])
        above = x > reach.upper[q]
        edge = (f"beyond the largest fitted run ({_edge(q, reach.upper[q])})" if above
                else f"below the smallest fitted run ({_edge(q, reach.lower[q])})")
        head = f"{what}: " if what else ""
        count = f"{int(over.sum())} of {len(frame)} rows lie up to" if len(frame) > 1 else "the row lies"
        hold = _BANDS_HOLD[None if not bands else form is not None]
        parts.append(f"{head}{count} {cols[q]:.1f} decades of {_WORDS[q]} {edge}; {hold}")
    if tokens_per_param is not None and "tokens_per_param_outside" in frame and frame["tokens_per_param_outside"].any():
        lo, hi = reach.tokens_per_param
        rows = np.flatnonzero(frame["tokens_per_param_outside"].to_numpy(dtype=bool))
        tpp = frame[tokens_per_param].to_numpy(dtype=float)
        worst = rows[np.argmax(np.abs(np.log(tpp[rows] / np.sqrt(lo * hi))))]
        at = ""
        if c in frame:
            at = f" at {format_flops(float(frame[c].to_numpy(dtype=float)[worst]))}"
        parts.append(
            f"{what + ': ' if what else ''}the plan{at} uses {tpp[worst]:.3g} tokens per parameter while the fitted "
            f"runs span {lo:.3g}-{hi:.3g} ({len(rows)} of {len(frame)} rows outside); the law is untested there")
    return "\n".join(parts) if parts else None


def warn_extrapolation(frame: pd.DataFrame, runs, *, what="table", n="N", d="D", c="C", tokens_per_param=None,
                       flops_per_param_token=FLOPS_PER_PARAM_TOKEN, form=None, bands=True, stacklevel=2) -> None:
    """One :class:`~bayescale.base.errors.ExtrapolationWarning` for an annotated table, if it reaches too far.

    The table must carry the columns of :func:`annotate`. The text names how
    many rows lie more than :data:`WARN_DECADES` outside the fitted range and
    how far the farthest lies, in which quantity and past which edge; and,
    for allocation tables, the tokens per parameter outside the runs' range.
    """
    reach = runs if isinstance(runs, Reach) else Reach.from_runs(runs)
    text = extrapolation_message(frame, reach, what=what, n=n, d=d, c=c, tokens_per_param=tokens_per_param,
                                 flops_per_param_token=flops_per_param_token, form=form, bands=bands)
    if text:
        warn_user(text, ExtrapolationWarning, stacklevel=stacklevel + 1)
