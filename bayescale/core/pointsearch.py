"""Point fits' start grids, objective and grid search: the array layer under :mod:`bayescale.fitting.point`.

See :mod:`bayescale.fitting.point` for the methods."""


from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..base.errors import BayescaleError, SpecError
from .laws import NUMPY, PYTENSOR, get_law
from ..base.progress import KeyProgress


__all__ = [
    "published_grid",
    "default_grid",
    "LOG_KINDS",
    "LOSSES",
    "SEARCHES",
]

#: Kinds of parameter that are positive and optimised on the log scale.
LOG_KINDS = ("irreducible", "coefficient", "scale", "shape")
#: Losses a :class:`PointModel` can minimise.
LOSSES = {
    "huber": "Huber loss on log loss residuals (robust; Hoffmann et al. 2022, Approach 3)",
    "squared_log": "squared error on log loss",
    "squared": "squared error on loss",
}
SEARCHES = ("adaptive", "full")
#: Adaptive search: distinct starts that must reach the best end point before it stops.
CONFIRMATIONS = 5
#: Adaptive search: size of the first batch of starts (later batches double).
FIRST_BATCH = 20
#: Two end points are the same optimum when their objectives agree to this relative
#: tolerance and their coordinates to :data:`SAME_X`.
SAME_F = 1e-7
SAME_X = 1e-3
BIG_OBJECTIVE = 1e300
_CHUNK = 4096
#: Point fits of at least this many runs show the starts done by default (in a terminal or notebook).
PROGRESS_RUNS = 100_000
#: Most cells (starts x runs) evaluated at once when scoring the start grid (about 32 MB).
_CELLS = 4_000_000
#: Objectives at most this far above zero per run count as a perfect fit (all such end points are equal).
ZERO_F = 1e-20
#: Exponents outside this range fail the estimate's checks (published scaling exponents lie between
#: about 0.05 and 0.7; the published start grid spans 0 to 2).
EXPONENT_RANGE = (0.01, 3.0)
#: A parameter that moves no fitted log loss by more than this per unit of its coordinate (log scale
#: for positive parameters) has no effect on the fit: its term vanishes at the runs.
NO_EFFECT = 1e-6
#: End points reaching the best objective that lie further apart than this in some coordinate mean
#: the runs do not identify the parameters (a flat optimum).
FLAT_X = 0.1


# --------------------------------------------------------------------------- grids
def published_grid() -> dict:
    """The 4500-point start grid of Hoffmann et al. 2022, Approach 3.

    Returns
    -------
    dict
        ``log_E`` in {-1, -0.5, ..., 1}, ``log_A`` and ``log_B`` in
        {0, 5, ..., 25}, ``alpha`` and ``beta`` in {0, 0.5, ..., 2}.

    Examples
    --------
    >>> g = published_grid()
    >>> int(np.prod([len(v) for v in g.values()]))
    4500
    """
    return {
        "log_E": np.arange(-1.0, 1.01, 0.5),
        "log_A": np.arange(0.0, 25.1, 5.0),
        "log_B": np.arange(0.0, 25.1, 5.0),
        "alpha": np.arange(0.0, 2.01, 0.5),
        "beta": np.arange(0.0, 2.01, 0.5),
    }


_KIND_GRID = {
    "irreducible": np.arange(-1.0, 1.01, 0.5),
    "coefficient": np.arange(0.0, 25.1, 5.0),
    "exponent": np.arange(0.0, 2.01, 0.5),
    "scale": np.arange(10.0, 35.1, 5.0),
    "shape": np.arange(0.0, 3.1, 1.0),
}


def default_grid(law) -> dict:
    """Start grid for any law, by parameter kind (the published one for Chinchilla).

    Coefficients: log in {0, 5, ..., 25}; irreducible terms: log in
    {-1, -0.5, ..., 1}; exponents in {0, 0.5, ..., 2}; critical scales: log in
    {10, 15, ..., 35}; shapes: log in {0, 1, 2, 3}.

    Examples
    --------
    >>> sorted(default_grid("power_n"))
    ['alpha', 'log_A', 'log_E']
    """
    law = get_law(law)
    return {coordinate_name(p): _KIND_GRID[p.kind].copy() for p in law.parameters}


def coordinate_name(p) -> str:
    return f"log_{p.name}" if p.kind in LOG_KINDS else p.name


def _is_log(law) -> np.ndarray:
    return np.array([p.kind in LOG_KINDS for p in law.parameters])


def to_params(law, theta) -> dict:
    """Optimisation coordinates (..., k) -> published parameters by name."""
    theta = np.asarray(theta, dtype=float)
    logs = _is_log(law)
    return {p.name: (np.exp(theta[..., j]) if logs[j] else theta[..., j].copy())
            for j, p in enumerate(law.parameters)}


def _to_theta(law, params) -> np.ndarray:
    logs = _is_log(law)
    return np.array([np.log(params[p.name]) if logs[j] else float(params[p.name])
                     for j, p in enumerate(law.parameters)], dtype=float)


def grid_starts(law, grid) -> np.ndarray:
    coords = [coordinate_name(p) for p in law.parameters]
    if isinstance(grid, pd.DataFrame):
        missing = [c for c in coords if c not in grid.columns]
        if missing:
            raise SpecError(f"start grid lacks column(s) {missing}; law {law.name!r} needs {coords}")
        starts = grid[coords].to_numpy(dtype=float)
    else:
        if not isinstance(grid, dict):
            raise SpecError(f"grid must be a dict of value lists or a DataFrame of starts, got {type(grid).__name__}")
        unknown = [c for c in grid if c not in coords]
        missing = [c for c in coords if c not in grid]
        if unknown or missing:
            raise SpecError(f"grid for law {law.name!r} must give values for exactly {coords} "
                            f"(log scale for positive parameters); missing {missing}, unknown {unknown}")
        values = [np.atleast_1d(np.asarray(grid[c], dtype=float)) for c in coords]
        starts = np.array(list(itertools.product(*values)), dtype=float).reshape(-1, len(coords))
    if starts.size == 0 or not np.all(np.isfinite(starts)):
        raise SpecError("the start grid must hold at least one start, all finite")
    return starts


# ------------------------------------------------------------------- objective
_COMPILED: dict = {}


def _compiled(law, loss):
    """Objective and gradient for a batch of starts, compiled once per (law, loss).

    Returns a function ``f(theta, y, w, delta, *inputs) -> (objective (S,), gradient (S, k))``
    where ``theta`` is (S, k) in optimisation coordinates, ``y`` the observed
    loss (n,), ``w`` non-negative weights per run (n,) (bootstrap counts).
    """
    key = (law.name, law.function, loss)
    if key not in _COMPILED:
        import pytensor
        import pytensor.tensor as pt

        theta = pt.dmatrix("theta")
        y = pt.dvector("y")
        w = pt.dvector("w")
        delta = pt.dscalar("delta")
        xs = [pt.dvector(k) for k in law.inputs]
        params = {}
        for j, p in enumerate(law.parameters):
            col = theta[:, j][:, None]
            params[p.name] = pt.exp(col) if p.kind in LOG_KINDS else col
        pred = law.log_loss({k: x[None, :] for k, x in zip(law.inputs, xs)}, params, PYTENSOR)
        if loss == "squared":
            r = pt.exp(pred) - y[None, :]
            rho = 0.5 * r**2
        else:
            r = pred - pt.log(y)[None, :]
            if loss == "huber":
                ar = pt.abs(r)
                rho = pt.switch(ar <= delta, 0.5 * r**2, delta * (ar - 0.5 * delta))
            else:
                rho = 0.5 * r**2
        obj = (rho * w[None, :]).sum(axis=1)
        grad = pytensor.grad(obj.sum(), theta)
        fn = pytensor.function([theta, y, w, delta, *xs], [obj, grad], on_unused_input="ignore")
        fn.trust_input = True
        _COMPILED[key] = fn
    return _COMPILED[key]


class Problem:
    """One data set and loss: batched and single-start objective with gradient."""

    def __init__(self, law, loss, delta, runs):
        self.law = law
        self.fn = _compiled(law, loss)
        self.y = np.ascontiguousarray(runs.loss, dtype=float)
        self.x = [np.ascontiguousarray(v, dtype=float) for v in runs.inputs(law.inputs).values()]
        self.delta = np.asarray(float(delta))
        self.ones = np.ones_like(self.y)

    def batch(self, theta, w=None):
        """Objective at many starts (chunked); non-finite values become +inf."""
        w = self.ones if w is None else w
        out = np.empty(len(theta))
        chunk = max(1, min(_CHUNK, _CELLS // max(self.y.size, 1)))  # bounded memory for large ladders
        for i in range(0, len(theta), chunk):
            part = np.ascontiguousarray(theta[i:i + chunk], dtype=float)
            with np.errstate(all="ignore"):
                out[i:i + chunk] = self.fn(part, self.y, w, self.delta, *self.x)[0]
        return np.where(np.isfinite(out), out, np.inf)

    def single(self, w):
        """``fun(theta) -> (f, grad)`` for scipy, with weights ``w``."""
        fn, y, delta, x = self.fn, self.y, self.delta, self.x
        w = np.ascontiguousarray(w, dtype=float)

        def fun(theta):
            with np.errstate(all="ignore"):
                f, g = fn(np.ascontiguousarray(theta, dtype=float)[None, :], y, w, delta, *x)
            f, g = float(f[0]), g[0]
            if not np.isfinite(f) or not np.all(np.isfinite(g)):
                return BIG_OBJECTIVE, np.zeros_like(g)
            return f, g

        return fun


def minimize_from(fun, x0, options):
    from scipy.optimize import minimize

    return minimize(fun, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B", options=options)


def one_blas_thread():
    """Context that keeps BLAS single-threaded.

    L-BFGS-B makes many tiny BLAS calls; with the default thread pools of
    NumPy's and SciPy's OpenBLAS competing for the cores, each call can cost
    milliseconds instead of microseconds.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# ------------------------------------------------------------------ grid search
def _same_f(f, best_f, n_runs):
    """End points whose objective equals the best one (relative SAME_F; below ZERO_F per run all are zero)."""
    return f <= max(best_f + SAME_F * abs(best_f), ZERO_F * n_runs) + 1e-300


def _same(f, x, best_f, best_x, n_runs=0):
    return _same_f(f, best_f, n_runs) & (np.max(np.abs(x - best_x), axis=-1) <= SAME_X)


def _flat(f, x, best_f, best_x, n_runs) -> tuple:
    """(starts at the best objective, largest distance of their end points from the best one per coordinate)."""
    at = _same_f(f, best_f, n_runs)
    return int(at.sum()), np.max(np.abs(x[at] - best_x), axis=0)


def _run_starts(fun, starts, order, search, options, n_runs=0, progress=None) -> dict:
    """L-BFGS-B from ``starts[order]``; adaptive search stops once the best end point is confirmed or flat."""
    results = {}
    done = 0
    size = FIRST_BATCH if search == "adaptive" else order.size
    while done < order.size:
        for i in order[done:done + size]:
            with np.errstate(all="ignore"):
                results[int(i)] = minimize_from(fun, starts[i], options)
            if progress is not None:
                ok = sum(bool(r.success) for r in results.values())
                progress.update(ok=ok, failed=len(results) - ok, running=1)
        done += size
        size *= 2
        if search == "adaptive":
            fs = np.array([r.fun for r in results.values()])
            xs = np.array([r.x for r in results.values()])
            b = int(np.argmin(fs))
            if int(_same(fs, xs, fs[b], xs[b], n_runs).sum()) >= CONFIRMATIONS:
                break
            count, spread = _flat(fs, xs, fs[b], xs[b], n_runs)
            if count >= CONFIRMATIONS and spread.max() > FLAT_X:  # a flat optimum: more starts cannot fix it
                break
    return results


def grid_search(problem, starts, coords, search, options, progressbar=False):
    """L-BFGS-B from the starts; returns (best result, table of the starts run)."""
    f0 = problem.batch(starts)
    usable = np.flatnonzero(np.isfinite(f0))
    if usable.size == 0:
        raise BayescaleError("the objective is not finite at any start of the grid; check the grid and the data")
    order = usable[np.argsort(f0[usable], kind="stable")]
    fun = problem.single(problem.ones)
    bar = None
    if progressbar:
        bar = KeyProgress(order.size, enabled=True, description=f"L-BFGS-B starts ({problem.y.size:,} runs)")
    try:
        with one_blas_thread():
            results = _run_starts(fun, starts, order, search, options, problem.y.size, bar)
    finally:
        if bar is not None:
            bar.close()
    idx = np.array(sorted(results))
    res = [results[i] for i in idx]
    fs = np.array([r.fun for r in res])
    ok = np.array([r.success for r in res])
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(res))
    best = res[pool[np.argmin(fs[pool])]]
    table = pd.DataFrame(starts[idx], columns=[f"start_{c}" for c in coords], index=pd.Index(idx, name="start"))
    table["start_objective"] = f0[idx]
    for j, c in enumerate(coords):
        table[c] = [r.x[j] for r in res]
    table["objective"] = fs
    table["success"] = ok
    table["n_evaluations"] = [r.nfev for r in res]
    xs = np.array([r.x for r in res])
    table["at_best"] = _same(fs, xs, best.fun, best.x, problem.y.size)
    count, spread = _flat(fs, xs, best.fun, best.x, problem.y.size)
    table.attrs.update(n_grid=len(starts), n_usable=int(usable.size), search=search,
                       flat={c: float(v) for c, v in zip(coords, spread) if v > FLAT_X} if count > 1 else {})
    return best, table


# ----------------------------------------------------------------------- checks
def estimate_problems(law, theta, inputs, optimizer_success=True, flat=None) -> list:
    """What makes a point estimate unusable, in words (empty: it passes).

    Parameters
    ----------
    law : Law
    theta : array
        The estimate in optimisation coordinates (``log_E``, ..., ``alpha`` ...).
    inputs : mapping of str to array
        The fitted runs' inputs.
    optimizer_success : bool
        L-BFGS-B's own verdict.
    flat : dict, optional
        Coordinates in which end points at the best objective lie more than
        :data:`FLAT_X` apart, with that distance.

    Returns
    -------
    list of str
        L-BFGS-B did not converge; a parameter is not finite or ran to zero;
        an exponent lies outside :data:`EXPONENT_RANGE`; the law is not
        finite at a run; a parameter has no effect on the fitted losses (at
        most :data:`NO_EFFECT` per unit); the best objective is reached at
        distinct points.

    Examples
    --------
    >>> import numpy as np
    >>> law = get_law("power_n")
    >>> inputs = {"N": np.geomspace(1e7, 1e9, 8)}
    >>> estimate_problems(law, _to_theta(law, dict(E=1.8, A=400.0, alpha=0.3)), inputs)
    []
    >>> estimate_problems(law, _to_theta(law, dict(E=1.8, A=400.0, alpha=-0.2)), inputs)
    ['exponent alpha = -0.2 lies outside the plausible range 0.01 to 3']
    >>> estimate_problems(law, _to_theta(law, dict(E=1.8, A=1.0, alpha=2.0)), inputs)  # doctest: +ELLIPSIS
    ['A = 1 has no effect on the fitted losses ...', 'alpha = 2 has no effect on the fitted losses ...']
    """
    theta = np.asarray(theta, dtype=float)
    out = [] if optimizer_success else ["L-BFGS-B did not report convergence at the best start"]
    params = to_params(law, theta)
    logs = _is_log(law)
    lo, hi = EXPONENT_RANGE
    for j, p in enumerate(law.parameters):
        v = float(params[p.name])
        if not np.isfinite(v) or (logs[j] and v <= 0):
            out.append(f"{p.name} = {v:.3g} is not a finite positive number (the optimiser ran to the edge of "
                       "floating point)")
        elif p.kind == "exponent" and not lo <= v <= hi:
            out.append(f"exponent {p.name} = {v:.3g} lies outside the plausible range {lo:g} to {hi:g}")
    if len(out) > (0 if optimizer_success else 1):
        return out
    x = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}

    def log_loss(t):
        with np.errstate(all="ignore"):
            return np.asarray(law.log_loss(x, to_params(law, t), NUMPY), dtype=float)

    base = log_loss(theta)
    if not np.all(np.isfinite(base)):
        return out + [f"the fitted law is not finite at {int(np.sum(~np.isfinite(base)))} of {base.size} runs"]
    step = 1e-6
    for j, p in enumerate(law.parameters):
        moved = theta.copy()
        moved[j] += step
        effect = np.abs(log_loss(moved) - base) / step
        if not np.max(effect) > NO_EFFECT:
            out.append(f"{p.name} = {params[p.name]:.3g} has no effect on the fitted losses (its term vanishes at "
                       "these runs, so it stays wherever the optimiser started)")
    if flat:
        where = ", ".join(f"{c} by {d:.3g}" for c, d in flat.items())
        out.append(f"the best objective is reached at end points that differ in {where}: these runs do not "
                   "identify the parameters")
    return out

