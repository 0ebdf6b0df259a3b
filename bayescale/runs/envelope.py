"""The compute-efficient frontier: the lower envelope of loss over compute.

Two kinds of input, one output.

*Final runs* (one row per run: ``N``, ``D`` or ``C``, ``loss``). The compute
axis is cut into bins of ``log10 C``: one bin per IsoFLOP level when the
runs sit on levels (given as ``levels=``, or detected: at most a third as
many distinct compute values, to 0.01 decade, as runs), else
``bins_per_decade`` bins per decade on a fixed grid (edges at multiples of
``1 / bins_per_decade`` decades). In each bin the run of least loss is the
candidate; candidates are put in order of their own compute and only those
on the monotone decreasing lower envelope are kept: a candidate is dropped
when a run of less (or equal) compute reached a lower loss (a cumulative
minimum over increasing C). What is left are the runs no other run beats
with less compute. Each point is a real run, so N_opt is quantised to the
model sizes sampled; with runs that end at the end of their schedule (the
bundled Chinchilla runs) the envelope of final points is the best run per
compute bin: an IsoFLOP arg-min without a parabola.

*Training curves* (several rows per run, a ``run`` id column; each row a
checkpoint with the tokens seen so far, ``D``, and its compute ``C``).
Hoffmann et al. 2022, Approach 1: on a grid of compute values
(``points_per_decade`` per decade) each curve is interpolated linearly in
``log C`` (loss, and ``log D``) where it has checkpoints on both sides, the
minimum over all curves is taken, and the run that achieves it is recorded.
Grid points reached by fewer than ``min_curves`` curves are left out; the
same monotone filter applies.

``edge`` flags frontier points whose run has the smallest or largest model
size among the candidates of its bin (or grid point): the optimum may lie
outside the model sizes there, as in an IsoFLOP profile whose minimum is at
its end. :class:`bayescale.fitting.envelope_fit.Approach1` fits its power laws on
the points that are not edges.

``over="D"`` gives the same envelope over tokens: per bin of ``log10 D`` the
run of least loss, kept when no run with fewer tokens did better. These are
the data-limited runs of Kaplan et al. 2020 (the loss reachable with D tokens
when the model is large enough), used by :mod:`bayescale.across.trends`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..base.errors import DataError, SpecError
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_count, positive_array
from .data import RunData, load_runs

__all__ = ["frontier", "curve_envelope", "envelope", "above_envelope", "FRONTIER_COLUMNS"]

#: Columns of every frontier table, in this order (``bin`` only for binned runs).
FRONTIER_COLUMNS = ("C", "N", "D", "loss", "run", "n_candidates", "edge")

#: Share of distinct compute values (to 0.01 decade) per run at or below which runs are taken to sit on
#: IsoFLOP levels.
LEVEL_SHARE = 1 / 3


@dataclass
class _Candidates:
    """Candidates for the envelope: rows (runs, or points of runs) by columns (bins or grid points).

    ``loss`` is +inf where a row is no candidate of a column.
    """

    loss: np.ndarray      # (R, K)
    x: np.ndarray         # (R, K) the envelope's axis (C or D) of the candidate
    c: np.ndarray         # (R, K)
    d: np.ndarray         # (R, K)
    n: np.ndarray         # (R,)
    row_run: np.ndarray   # (R,) code of the run of each row
    run_ids: np.ndarray   # (n_runs,) run labels
    centre: np.ndarray    # (K,) bin centre or grid value
    method: str

    def pick(self, keep_runs=None) -> pd.DataFrame:
        """The frontier of the candidates whose run is in ``keep_runs`` (run codes; None: all)."""
        loss = self.loss
        if keep_runs is not None:
            rows = np.isin(self.row_run, keep_runs)
            loss = np.where(rows[:, None], loss, np.inf)
        finite = np.isfinite(loss)
        count = finite.sum(axis=0)
        cols = np.flatnonzero(count > 0)
        best = np.argmin(loss[:, cols], axis=0)
        n_rows = np.where(finite, self.n[:, None], np.nan)
        with np.errstate(invalid="ignore"):
            n_lo = np.nanmin(n_rows[:, cols], axis=0)
            n_hi = np.nanmax(n_rows[:, cols], axis=0)
        n_best = self.n[best]
        edge = (count[cols] < 2) | (n_best <= n_lo) | (n_best >= n_hi)
        x = self.x[best, cols]
        lo = loss[best, cols]
        order = np.argsort(x, kind="stable")
        lo_sorted = lo[order]
        prev = np.concatenate([[np.inf], np.minimum.accumulate(lo_sorted)[:-1]])
        keep = order[lo_sorted < prev]
        keep = keep[np.argsort(x[keep], kind="stable")]
        frame = pd.DataFrame({
            "C": self.c[best, cols][keep], "N": n_best[keep], "D": self.d[best, cols][keep], "loss": lo[keep],
            "run": self.run_ids[self.row_run[best[keep]]], "n_candidates": count[cols][keep],
            "edge": edge[keep]})
        if self.method != "curves":
            frame["bin"] = self.centre[cols][keep]
        frame.attrs["method"] = self.method
        return frame.reset_index(drop=True)


def _run_codes(frame, run):
    """Run labels of the rows: the ``run`` column, else the frame's index."""
    if run is not None:
        if run not in frame.columns:
            raise SpecError(f"run={run!r} is not a column of the data; columns: {', '.join(map(str, frame.columns))}")
        labels = frame[run]
        if labels.isna().any():
            raise DataError([f"column {run!r}: {int(labels.isna().sum())} missing run id(s)"],
                            header="Run ids must be given for every row:")
        labels = labels.to_numpy()
    else:
        labels = frame.index.to_numpy()
    codes, ids = pd.factorize(labels, sort=False)
    return codes, np.asarray(ids)


def _bins(log_x, *, levels, resolution, bins_per_decade):
    """Bin label of each row (-1: in no bin), bin centres (log10) and the method's name."""
    if levels is not None:
        lv = np.log10(check_budgets(levels, "levels"))
        dist = np.abs(log_x[:, None] - lv[None, :])
        near = dist.argmin(axis=1)
        return np.where(dist.min(axis=1) <= resolution / 2, near, -1), lv, "levels"
    rounded = np.round(log_x, 2)
    distinct = np.unique(rounded)
    if len(distinct) <= LEVEL_SHARE * len(log_x):
        return np.searchsorted(distinct, rounded), distinct, "levels"
    k = np.floor(log_x * bins_per_decade).astype(int)
    uniq = np.unique(k)
    return np.searchsorted(uniq, k), (uniq + 0.5) / bins_per_decade, "bins"


def _load(data, columns, require):
    runs = load_runs(data, columns=columns, require=require)
    return runs.frame if isinstance(runs, RunData) else runs


def check_envelope_settings(bins_per_decade, resolution):
    if not (isinstance(bins_per_decade, (int, float)) and not isinstance(bins_per_decade, bool)
            and np.isfinite(bins_per_decade) and bins_per_decade > 0):
        raise SpecError(f"bins_per_decade must be a positive number, got {bins_per_decade!r}")
    if not (isinstance(resolution, (int, float)) and not isinstance(resolution, bool)
            and np.isfinite(resolution) and resolution > 0):
        raise SpecError(f"resolution must be a positive number of decades, got {resolution!r}")


def frontier_candidates(data, *, over="C", levels=None, resolution=0.1, bins_per_decade=5, run=None,
                         columns=None) -> _Candidates:
    if over not in ("C", "D"):
        raise SpecError(f"over must be 'C' (compute) or 'D' (tokens), got {over!r}")
    check_envelope_settings(bins_per_decade, resolution)
    if levels is not None and over != "C":
        raise SpecError("levels= are compute levels; they apply with over='C' only")
    frame = _load(data, columns, ("N", "D", "C"))
    codes, ids = _run_codes(frame, run)
    x = frame[over].to_numpy(dtype=float)
    label, centre, method = _bins(np.log10(x), levels=levels, resolution=float(resolution),
                                  bins_per_decade=float(bins_per_decade))
    k = len(centre)
    rows = np.arange(len(frame))
    inside = label >= 0
    loss = np.full((len(frame), k), np.inf)
    loss[rows[inside], label[inside]] = frame["loss"].to_numpy(dtype=float)[inside]

    def spread(v):
        return np.repeat(np.asarray(v, dtype=float)[:, None], k, axis=1)

    return _Candidates(loss, spread(x), spread(frame["C"]), spread(frame["D"]), frame["N"].to_numpy(dtype=float),
                       codes, ids, 10 ** np.asarray(centre, dtype=float), method)


def frontier(runs, *, over="C", levels=None, resolution=0.1, bins_per_decade=5, run=None,
             columns=None) -> pd.DataFrame:
    """The lower envelope of the final loss of runs over compute (or tokens).

    Parameters
    ----------
    runs : DataFrame, dict of arrays, RunData or path
        One row per run: ``N``, ``loss`` and ``C`` or ``D`` (the other is
        derived as in :func:`bayescale.load_runs`).
    over : {"C", "D"}
        Envelope over compute (the compute-efficient frontier) or over
        tokens (the data-limited runs).
    levels : sequence of float, optional
        IsoFLOP levels in FLOPs: runs within ``resolution / 2`` decades of a
        level form its bin; other runs are left out.
    resolution : float, default 0.1
        Width of a level in decades (with ``levels``).
    bins_per_decade : float, default 5
        Bins per decade of the fixed grid, used when no levels are given or
        detected (see the module notes).
    run : str, optional
        Column of run ids (reported in the ``run`` column); default the
        frame's index.
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    DataFrame
        One row per frontier point in order of increasing ``over``: ``C``,
        ``N``, ``D``, ``loss``, ``run``, ``n_candidates`` (runs in its bin),
        ``edge`` (its run has the smallest or largest N of the bin) and
        ``bin`` (centre of the bin, in units of ``over``);
        ``attrs["method"]``: ``"levels"`` or ``"bins"``.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 1e8, 2e8, 4e8], "C": [1e19] * 3 + [1e20] * 3,
    ...                      "loss": [3.0, 2.9, 3.1, 2.8, 2.6, 2.5]})
    >>> frontier(runs)[["C", "N", "loss", "edge"]]
                  C            N  loss   edge
    0  1.000000e+19  200000000.0   2.9  False
    1  1.000000e+20  400000000.0   2.5   True
    """
    return frontier_candidates(runs, over=over, levels=levels, resolution=resolution,
                                bins_per_decade=bins_per_decade, run=run, columns=columns).pick()


def curve_candidates(points, *, run="run", grid=None, points_per_decade=20, min_curves=2,
                      columns=None) -> _Candidates:
    if not (isinstance(points_per_decade, (int, float)) and not isinstance(points_per_decade, bool)
            and np.isfinite(points_per_decade) and points_per_decade > 0):
        raise SpecError(f"points_per_decade must be a positive number, got {points_per_decade!r}")
    check_count(min_curves, "min_curves")
    frame = _load(points, columns, ("N", "D", "C"))
    if run is None or run not in frame.columns:
        raise SpecError(f"training curves need a column of run ids; run={run!r} is not one of the columns "
                        f"({', '.join(map(str, frame.columns))})")
    codes, ids = _run_codes(frame, run)
    n_of = frame.groupby(codes)["N"].agg(["min", "max"])
    varies = n_of.index[n_of["min"] != n_of["max"]]
    if len(varies):
        raise DataError([f"run {ids[i]!r}: N varies from {n_of.loc[i, 'min']:.4g} to {n_of.loc[i, 'max']:.4g}"
                         for i in varies[:10]], header="Every point of a training curve must have its run's N:")
    log_c = np.log10(frame["C"].to_numpy(dtype=float))
    log_d = np.log10(frame["D"].to_numpy(dtype=float))
    loss = frame["loss"].to_numpy(dtype=float)
    if grid is None:
        lo, hi = log_c.min(), log_c.max()
        step = 1.0 / points_per_decade
        g = np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)
    else:
        g = np.log10(np.sort(check_budgets(grid, "grid")))
    R = len(ids)
    L = np.full((R, len(g)), np.inf)
    Dg = np.full((R, len(g)), np.nan)
    n = np.empty(R)
    for r in range(R):
        m = codes == r
        order = np.argsort(log_c[m], kind="stable")
        xc, yl, yd = log_c[m][order], loss[m][order], log_d[m][order]
        n[r] = frame["N"].to_numpy(dtype=float)[m][0]
        xc, first = np.unique(xc, return_index=True)  # one checkpoint per compute value
        yl, yd = yl[first], yd[first]
        inside = (g >= xc[0] - 1e-12) & (g <= xc[-1] + 1e-12)
        if not inside.any():
            continue
        L[r, inside] = np.interp(g[inside], xc, yl)
        Dg[r, inside] = 10 ** np.interp(g[inside], xc, yd)
    enough = np.isfinite(L).sum(axis=0) >= min_curves
    L[:, ~enough] = np.inf
    c = np.broadcast_to(10 ** g, L.shape).copy()
    return _Candidates(L, c, c, Dg, n, np.arange(R), ids, 10 ** g, "curves")


def curve_envelope(points, *, run="run", grid=None, points_per_decade=20, min_curves=2,
                   columns=None) -> pd.DataFrame:
    """Hoffmann et al.'s Approach 1 envelope: the least loss over all training curves at each compute.

    Parameters
    ----------
    points : DataFrame, dict of arrays, RunData or path
        Checkpoints: ``N``, ``loss``, ``C`` or ``D`` (tokens seen; the other
        is derived as in :func:`bayescale.load_runs`) and a run id column.
    run : str, default "run"
        Column of run ids. N must be constant within a run.
    grid : sequence of float, optional
        Compute values (FLOPs) at which to take the minimum; default
        ``points_per_decade`` per decade over the checkpoints' compute.
    points_per_decade : float, default 20
    min_curves : int, default 2
        Fewest curves that must reach a grid point for it to be used.
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    DataFrame
        As :func:`frontier` (without ``bin``): at each kept grid value ``C``,
        the run achieving the least interpolated loss, its ``N``, the tokens
        ``D`` it had seen there and the ``loss``; ``n_candidates`` is the
        number of curves reaching that compute. ``attrs["method"]``:
        ``"curves"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rows = [(r, n, d, 2.0 + 400 / n**0.34 + 400 / d**0.28) for r, n in enumerate([1e8, 3e8, 1e9])
    ...         for d in np.geomspace(1e9, 1e11, 9)]
    >>> pts = pd.DataFrame(rows, columns=["run", "N", "D", "loss"])
    >>> env = curve_envelope(pts, points_per_decade=4)
    >>> env["run"].tolist()  # larger models take over as compute grows
    ['0', '1', '1', '1', '1', '1', '2', '2']
    """
    return curve_candidates(points, run=run, grid=grid, points_per_decade=points_per_decade,
                             min_curves=min_curves, columns=columns).pick()


def is_curves(data, run, columns) -> bool:
    frame = _load(data, columns, ("N",))
    return run is not None and run in frame.columns and frame[run].duplicated().any()


def envelope(data, *, run="run", levels=None, resolution=0.1, bins_per_decade=5, points_per_decade=20,
             min_curves=2, columns=None) -> pd.DataFrame:
    """The compute-efficient frontier of runs or of training curves, whichever `data` holds.

    With a ``run`` column in which some run has several rows, `data` are
    training curves (:func:`curve_envelope`); otherwise final runs
    (:func:`frontier` over compute, runs labelled by the ``run`` column if
    present, else by the row index).

    Examples
    --------
    >>> import bayescale as bs
    >>> env = envelope(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> env.attrs["method"], bool(env["loss"].is_monotonic_decreasing)
    ('bins', True)
    """
    if is_curves(data, run, columns):
        return curve_envelope(data, run=run, points_per_decade=points_per_decade, min_curves=min_curves,
                              columns=columns)
    frame = _load(data, columns, ("N",))
    return frontier(data, levels=levels, resolution=resolution, bins_per_decade=bins_per_decade,
                    run=run if run is not None and run in frame.columns else None, columns=columns)


def above_envelope(frontier_points, c, loss) -> np.ndarray:
    """Log-loss distance of points above the lower envelope of a frontier table.

    The envelope is the frontier's loss interpolated linearly in ``log C``
    (constant beyond its ends; a step that never rises). Points on it give 0,
    points above it ``log(loss / envelope)`` (> 0), points below it < 0.

    Parameters
    ----------
    frontier_points : DataFrame
        A table of :func:`frontier` or :func:`curve_envelope`.
    c, loss : array_like
        Compute and loss of the points to measure.

    Examples
    --------
    >>> f = pd.DataFrame({"C": [1e19, 1e20], "loss": [3.0, 2.5]})
    >>> above_envelope(f, [1e19, 1e20, 1e20], [3.0, 2.5, 3.0]).round(3).tolist()
    [0.0, 0.0, 0.182]
    """
    c = positive_array(c, "c")
    loss = positive_array(loss, "loss")
    fc = frontier_points["C"].to_numpy(dtype=float)
    fl = frontier_points["loss"].to_numpy(dtype=float)
    if len(fc) == 0:
        raise DataError(["the frontier table has no rows"], header="Cannot measure distance to an empty envelope:")
    order = np.argsort(fc)
    env = np.interp(np.log10(c), np.log10(fc[order]), np.minimum.accumulate(fl[order]))
    return np.log(loss / env)
