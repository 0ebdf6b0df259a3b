"""Point-estimate fits: the published baselines the Bayesian fit is compared with.

* :class:`Approach3` — Hoffmann et al. 2022, Approach 3, as published and as
  replicated by Besiroglu et al. 2024: Huber loss (delta = 1e-3) on the log
  loss, summed over runs, minimised with L-BFGS-B from a 4500-point grid of
  starts in log-space parameters (``log E, log A, log B, alpha, beta``).
* :class:`LeastSquares` — least squares on log loss (or on loss) for any law.
* :class:`PointModel` — the general spec behind both (any law, Huber or
  squared loss, any start grid).
* Bootstrap — :meth:`PointFit.bootstrap` resamples runs with replacement and
  refits each resample from the full-data estimate (warm start); percentile
  intervals for parameters, predictions and allocations.
* :class:`IsoFLOP` — Approach 2: a parabola in log N per compute level, its
  minimum, then ``N_opt ∝ C^a`` and ``D_opt ∝ C^b``.

The law is evaluated through :meth:`bayescale.laws.Law.log_loss`, the same
definition the Bayesian model samples; the objective and its exact gradient
are compiled once per law and loss with PyTensor from that definition.

Positive parameters (irreducible terms, coefficients, scales, shapes) are
optimised on the log scale, exponents on their own scale. The optimisation
coordinates are named ``log_E``, ``log_A``, ... and ``alpha``, ``beta`` ...;
start grids are given in them.

Grid search. ``search="full"`` runs L-BFGS-B from every start of the grid,
as published. ``search="adaptive"`` (default) evaluates the objective at every
start first (one vectorised call), then runs the starts in order of that
value, in growing batches, and stops once the best end point has been reached
from :data:`CONFIRMATIONS` different starts. On the 240 Chinchilla runs it
returns the same optimum as the full grid (tested in ``tests/test_point.py``:
the full search reaches the best end point from about a third of the 4500
starts, and the 10 starts with the lowest initial objective all reach it, so
the first batch of 20 confirms it) in about 1 s instead of about 20 s. The adaptive search is a
heuristic: on a new objective, compare it once with ``search="full"``. It also stops once
:data:`CONFIRMATIONS` starts reach the best objective at points :data:`FLAT_X` apart: the optimum is
flat and more starts cannot make it a point.

Checks. ``converged`` (``success``) means more than L-BFGS-B's own verdict: the estimate must also
pass :func:`estimate_problems` — finite parameters, exponents within :data:`EXPONENT_RANGE`, every
parameter with an effect on the fitted losses (a term that vanishes at the runs leaves its
coefficient and exponent wherever the optimiser started) and an optimum that is a point, not a flat
ridge. :attr:`PointFit.reason` says what failed; tables of a fit that failed warn
(:class:`~bayescale.errors.DegenerateResultWarning`).
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pandas as pd

from .errors import BayescaleError, ConvergenceWarning, SpecError
from .laws import NUMPY, PYTENSOR, Law, get_law
from .contract import check_ci_kind, interval_label
from .results import ResultMethods
from .validation import check_budgets as _budgets, check_prob as _check_prob, check_seed as _check_seed
from .validation import positive_array as _positive

__all__ = [
    "PointModel",
    "Approach3",
    "LeastSquares",
    "PointFit",
    "IsoFLOP",
    "IsoFLOPFit",
    "published_grid",
    "default_grid",
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
#: Draws a point fit without bootstrap offers the shared read API: copies of the estimate, each with its own
#: resampled residual, so a new-run band holds the run-to-run scatter.
POINT_DRAWS = 4000
#: Adaptive search: distinct starts that must reach the best end point before it stops.
CONFIRMATIONS = 5
#: Adaptive search: size of the first batch of starts (later batches double).
FIRST_BATCH = 20
#: Two end points are the same optimum when their objectives agree to this relative
#: tolerance and their coordinates to :data:`SAME_X`.
SAME_F = 1e-7
SAME_X = 1e-3
_BIG = 1e300
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
    return {_coord(p): _KIND_GRID[p.kind].copy() for p in law.parameters}


def _coord(p) -> str:
    return f"log_{p.name}" if p.kind in LOG_KINDS else p.name


def _is_log(law) -> np.ndarray:
    return np.array([p.kind in LOG_KINDS for p in law.parameters])


def _to_params(law, theta) -> dict:
    """Optimisation coordinates (..., k) -> published parameters by name."""
    theta = np.asarray(theta, dtype=float)
    logs = _is_log(law)
    return {p.name: (np.exp(theta[..., j]) if logs[j] else theta[..., j].copy())
            for j, p in enumerate(law.parameters)}


def _to_theta(law, params) -> np.ndarray:
    logs = _is_log(law)
    return np.array([np.log(params[p.name]) if logs[j] else float(params[p.name])
                     for j, p in enumerate(law.parameters)], dtype=float)


def _grid_starts(law, grid) -> np.ndarray:
    coords = [_coord(p) for p in law.parameters]
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


class _Problem:
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
                return _BIG, np.zeros_like(g)
            return f, g

        return fun


def _minimize(fun, x0, options):
    from scipy.optimize import minimize

    return minimize(fun, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B", options=options)


def _one_blas_thread():
    """Context that keeps BLAS single-threaded.

    L-BFGS-B makes many tiny BLAS calls; with the default thread pools of
    NumPy's and SciPy's OpenBLAS competing for the cores, each call can cost
    milliseconds instead of microseconds.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# ------------------------------------------------------------------------ specs
class PointModel:
    """Settings of a point-estimate fit of a scaling law (data goes into :meth:`fit`).

    Parameters
    ----------
    law : str or Law, default "chinchilla"
    loss : {"huber", "squared_log", "squared"}
        ``huber``: Huber loss with threshold `delta` on log-loss residuals;
        ``squared_log``: least squares on log loss; ``squared``: least squares
        on loss. Summed over runs.
    delta : float, default 1e-3
        Huber threshold (only for ``loss="huber"``).
    grid : dict or DataFrame, optional
        Starts of L-BFGS-B in optimisation coordinates (``log_E``, ``log_A``
        ... for positive parameters, ``alpha`` ... for exponents): a dict of
        value lists (their Cartesian product) or a DataFrame with one start per
        row. Default: :func:`default_grid` (the published grid for Chinchilla).
    search : {"adaptive", "full"}
        ``full`` runs every start; ``adaptive`` runs the most promising starts
        first and stops once the best end point is confirmed (see module notes).
    n_boot : int, default 0
        Bootstrap resamples drawn by :meth:`fit` (0: none; call
        :meth:`PointFit.bootstrap` later if you like).
    random_seed : int, optional
        Seed of the bootstrap resamples and of Monte Carlo bands.
    ftol, gtol, maxls, maxiter : L-BFGS-B settings
        Tight by default: with scipy's defaults L-BFGS-B stops early on these
        objectives and bootstrap intervals come out far too narrow.

    Examples
    --------
    >>> import bayescale as bs
    >>> spec = bs.PointModel("power_n", loss="squared_log")
    >>> spec
    PointModel(law='power_n', loss='squared_log', search='adaptive', n_boot=0)
    """

    def __init__(self, law="chinchilla", *, loss="huber", delta=1e-3, grid=None, search="adaptive", n_boot=0,
                 random_seed=None, ftol=1e-15, gtol=1e-11, maxls=50, maxiter=15000):
        random_seed = _check_seed(random_seed)
        self.law: Law = get_law(law)
        if loss not in LOSSES:
            raise SpecError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if search not in SEARCHES:
            raise SpecError(f"unknown search {search!r}; valid: {', '.join(SEARCHES)}")
        if not (isinstance(delta, (int, float)) and not isinstance(delta, bool) and delta > 0):
            raise SpecError(f"delta must be a positive number, got {delta!r}")
        _check_count(n_boot, "n_boot", allow_zero=True)
        self.loss = loss
        self.delta = float(delta)
        self.grid = default_grid(self.law) if grid is None else grid
        self.starts = _grid_starts(self.law, self.grid)
        self.search = search
        self.n_boot = int(n_boot)
        self.random_seed = random_seed
        self.options = {"ftol": float(ftol), "gtol": float(gtol), "maxls": int(maxls),
                        "maxiter": int(maxiter), "maxfun": int(maxiter)}

    @property
    def coords(self) -> tuple:
        """Names of the optimisation coordinates (``log_E``, ``log_A``, ..., ``alpha`` ...)."""
        return tuple(_coord(p) for p in self.law.parameters)

    @property
    def param_names(self) -> tuple:
        """Parameters reported: the law's, then ``sigma`` (residual scale of log loss)."""
        return self.law.param_names + ("sigma",)

    def fit(self, runs, *, columns=None, progressbar=None) -> "PointFit":
        """Fit the law to `runs` by multi-start L-BFGS-B (and bootstrap if ``n_boot``).

        Parameters
        ----------
        runs : RunData, DataFrame, dict of arrays or path
            Training runs; see :func:`bayescale.load_runs`.
        columns : dict, optional
            Column renaming, as in :func:`bayescale.load_runs`.
        progressbar : bool, optional
            Show the starts done. Default: for at least
            :data:`PROGRESS_RUNS` runs, when the output is a terminal or a
            notebook (each start then takes seconds).

        Returns
        -------
        PointFit

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> fit = bs.Approach3().fit(runs)
        >>> round(fit.params["E"], 3), round(fit.params["alpha"], 3)
        (1.817, 0.347)
        """
        from .data import load_runs

        runs = load_runs(runs, columns=columns, require=self.law.inputs, min_runs=len(self.law.param_names) + 1)
        t0 = time.perf_counter()
        problem = _Problem(self.law, self.loss, self.delta, runs)
        if progressbar is None:
            from .progress import interactive

            progressbar = runs.n_runs >= PROGRESS_RUNS and interactive()
        best, table = _grid_search(problem, self.starts, self.coords, self.search, self.options, bool(progressbar))
        seconds = time.perf_counter() - t0
        fit = PointFit(self, runs, best.x, float(best.fun), bool(best.success), table,
                       {"grid_seconds": seconds})
        if not fit.success:
            warnings.warn(ConvergenceWarning(f"{type(self).__name__} fit did not converge: {fit.reason}"),
                          stacklevel=2)
        if self.n_boot:
            fit = fit.bootstrap(self.n_boot, random_seed=self.random_seed)
        return fit

    def _describe(self) -> str:
        if self.loss == "huber":
            return f"Huber loss (delta={self.delta:g}) on log loss, summed over runs"
        return f"{LOSSES[self.loss]}, summed over runs"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(law={self.law.name!r}, loss={self.loss!r}, search={self.search!r}, "
                f"n_boot={self.n_boot})")

    def __str__(self) -> str:
        return (f"{type(self).__name__}: {self.law.name} law, L = {self.law.formula}\n"
                f"  {self._describe()}; L-BFGS-B from {len(self.starts)} starts ({self.search} search)\n"
                f"  bootstrap resamples: {self.n_boot}\n"
                "Next: fit = spec.fit(runs); then fit.summary(), fit.predict(new_runs), fit.bootstrap(1000)")


class Approach3(PointModel):
    """Chinchilla Approach 3 as published (Hoffmann et al. 2022; Besiroglu et al. 2024).

    Huber loss, delta = 1e-3, on log loss against the log-sum-exp form of
    ``E + A/N^alpha + B/D^beta`` in ``(log E, log A, log B, alpha, beta)``,
    summed over runs; L-BFGS-B from the 4500-point grid of
    :func:`published_grid`, with ``ftol=1e-15, gtol=1e-11, maxls=50``.

    Parameters
    ----------
    search : {"adaptive", "full"}
        ``full`` runs all 4500 starts as published; ``adaptive`` (default)
        reaches the same optimum faster.
    n_boot : int, default 0
    random_seed : int, optional

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> {k: float(f"{v:.5g}") for k, v in fit.params.items()}  # published: 1.8172, 477.84, 2143.86, ...
    {'E': 1.8172, 'A': 477.83, 'B': 2143.4, 'alpha': 0.34731, 'beta': 0.36717}
    """

    def __init__(self, *, search="adaptive", n_boot=0, random_seed=None):
        super().__init__("chinchilla", loss="huber", delta=1e-3, grid=published_grid(), search=search,
                         n_boot=n_boot, random_seed=random_seed)

    def __repr__(self) -> str:
        return f"Approach3(search={self.search!r}, n_boot={self.n_boot})"


class LeastSquares(PointModel):
    """Least squares on log loss (``on="log_loss"``) or on loss (``on="loss"``), any law.

    Parameters
    ----------
    law : str or Law, default "chinchilla"
    on : {"log_loss", "loss"}
    grid, search, n_boot, random_seed
        As in :class:`PointModel`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, bayescale as bs
    >>> N = np.geomspace(1e7, 1e10, 12)
    >>> runs = pd.DataFrame({"N": N, "D": 20 * N, "loss": 2.0 + 300.0 * N**-0.3})
    >>> fit = bs.LeastSquares("power_n").fit(runs)
    >>> round(fit.params["alpha"], 4)
    0.3
    """

    def __init__(self, law="chinchilla", *, on="log_loss", grid=None, search="adaptive", n_boot=0, random_seed=None):
        losses = {"log_loss": "squared_log", "loss": "squared"}
        if on not in losses:
            raise SpecError(f"on must be 'log_loss' or 'loss', got {on!r}")
        self.on = on
        super().__init__(law, loss=losses[on], grid=grid, search=search, n_boot=n_boot, random_seed=random_seed)

    def __repr__(self) -> str:
        return f"LeastSquares(law={self.law.name!r}, on={self.on!r}, search={self.search!r}, n_boot={self.n_boot})"


def _check_count(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
        raise SpecError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")


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
                results[int(i)] = _minimize(fun, starts[i], options)
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


def _grid_search(problem, starts, coords, search, options, progressbar=False):
    """L-BFGS-B from the starts; returns (best result, table of the starts run)."""
    f0 = problem.batch(starts)
    usable = np.flatnonzero(np.isfinite(f0))
    if usable.size == 0:
        raise BayescaleError("the objective is not finite at any start of the grid; check the grid and the data")
    order = usable[np.argsort(f0[usable], kind="stable")]
    fun = problem.single(problem.ones)
    bar = None
    if progressbar:
        from .progress import KeyProgress

        bar = KeyProgress(order.size, enabled=True, description=f"L-BFGS-B starts ({problem.y.size:,} runs)")
    try:
        with _one_blas_thread():
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
    params = _to_params(law, theta)
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
            return np.asarray(law.log_loss(x, _to_params(law, t), NUMPY), dtype=float)

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


# ----------------------------------------------------------------------- result
class PointFit(ResultMethods):
    """A point estimate of a scaling law (returned by :meth:`PointModel.fit`).

    Reads like :class:`~bayescale.fit.ScalingFit`: :meth:`summary`,
    :meth:`predict` and :meth:`allocate` return the same columns, so the two
    can be swapped in a notebook.

    Bands. Without bootstrap the curve band is degenerate (lower = upper =
    the estimate): a point fit carries no uncertainty about the curve. The
    new-run band adds the empirical quantiles of the fit's residuals on log
    loss (run-to-run scatter). After :meth:`bootstrap`, the curve band is the
    percentile interval of the resampled fits, and the new-run band combines
    resampled curves with resampled residuals.

    Attributes
    ----------
    model : PointModel
        The settings that produced this fit.
    runs : RunData
    params : dict
        Estimates by name, published convention (``E``, ``A``, ...).
    objective : float
        Minimum of the objective.
    success, converged : bool
        Whether the estimate can be used: L-BFGS-B reported convergence at
        the best start and the estimate passes :func:`estimate_problems`.
    optimizer_success : bool
        L-BFGS-B's own verdict alone.
    reason : str
        Why the fit did not converge ("" when it did).
    starts : DataFrame
        One row per start run: start, end point, objective, ``at_best``.
    sigma : float
        Residual standard deviation on log loss, ``sqrt(sum r^2 / (n - k))``:
        the scale of the Normal plug-in density (:meth:`log_predictive_density`).
    boot : DataFrame or None
        Bootstrap estimates, one row per resample (parameters, ``sigma``,
        ``success``).
    """

    def __init__(self, model, runs, theta, objective, success, starts, timing, boot=None, boot_seed=None):
        self.model = model
        self.law = model.law
        self.runs = runs
        self.theta = np.asarray(theta, dtype=float)
        self.params = {k: float(v) for k, v in _to_params(self.law, self.theta).items()}
        self.objective = objective
        self.optimizer_success = bool(success)
        self.problems = estimate_problems(self.law, self.theta, runs.inputs(self.law.inputs), self.optimizer_success,
                                          getattr(starts, "attrs", {}).get("flat"))
        self.success = not self.problems
        self.reason = "; ".join(self.problems)
        self.starts = starts
        self.timing = dict(timing)
        self.boot = boot
        self.boot_seed = boot_seed
        pred = self._log_curve(runs.inputs(self.law.inputs), self.params)
        self._residuals = np.log(runs.loss) - pred
        dof = max(runs.n_runs - len(self.law.param_names), 1)
        self.sigma = float(np.sqrt(np.sum(self._residuals**2) / dof))

    # ------------------------------------------------------------- contract
    #: A fit of known form: no discrepancy beyond the fitted runs (:mod:`bayescale.form`).
    form_uncertainty = None
    #: Parameters are shared by all runs.
    hierarchical = False

    @property
    def draws_kind(self) -> str:
        """``"bootstrap"`` after :meth:`bootstrap`, else ``"point"`` (:mod:`bayescale.contract`)."""
        return "bootstrap" if self.bootstrapped else "point"

    @property
    def converged(self) -> bool:
        """The optimiser's verdict at the best start (:attr:`success`)."""
        return bool(self.success)

    @property
    def random_seed(self):
        """Default seed of the fit's Monte Carlo draws: the bootstrap's, else the model's."""
        return self.boot_seed if self.boot_seed is not None else self.model.random_seed

    @property
    def point_params(self) -> dict:
        """The estimate, which the tables report as their central value."""
        return dict(self.params)

    @property
    def draw_shape(self) -> tuple:
        """(1, resamples) after :meth:`bootstrap`, else (1, :data:`POINT_DRAWS`)."""
        return (1, len(self.boot) if self.bootstrapped else POINT_DRAWS)

    def residuals(self) -> np.ndarray:
        """``log(observed) - log(predicted)`` of each fitted run, in the order of :attr:`runs`."""
        return self._residuals.copy()

    def param_draws(self, group=None, *, random_seed=None) -> dict:
        """Parameter draws shaped (1, S): the bootstrap resamples, or S copies of the estimate.

        ``group`` and ``random_seed`` are accepted for the shared read API
        (:mod:`bayescale.contract`); a point fit has no groups and no random
        parameter draws.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.param_draws()["alpha"].shape
        (1, 4000)
        """
        names = list(self.law.param_names) + ["sigma"]
        if self.bootstrapped:
            return {k: self.boot[k].to_numpy(dtype=float)[None, :] for k in names}
        values = dict(self.params, sigma=self.sigma)
        return {k: np.full((1, POINT_DRAWS), values[k]) for k in names}

    def noise_draws(self, params, shape, rng) -> np.ndarray:
        """Run-to-run log-loss noise: the fit's own residuals, resampled."""
        return rng.choice(self._residuals, size=shape)

    @property
    def converged(self) -> bool:
        """Same as :attr:`success`: the estimate can be used (see :attr:`reason` when not)."""
        return self.success

    # --------------------------------------------------------------- helpers
    def table_problems(self, what) -> list:
        """Problems every table of this fit carries (:func:`bayescale.tablecheck.check_table`): an unusable estimate."""
        return [] if self.success else [f"the {type(self.model).__name__} fit did not converge ({self.reason}); the table "
                                         "is not an estimate"]

    def _log_curve(self, inputs, params):
        x = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
        with np.errstate(all="ignore"):
            return np.asarray(self.law.log_loss(x, params, NUMPY), dtype=float)

    def _new_runs(self, new_runs, columns=None):
        from .data import load_runs

        return load_runs(new_runs, columns=columns, require=self.law.inputs, require_loss=False)

    def _boot_params(self) -> dict:
        return {k: self.boot[k].to_numpy() for k in self.law.param_names}

    def _seed(self, random_seed):
        return self.boot_seed if random_seed is None else random_seed

    @property
    def bootstrapped(self) -> bool:
        """True when bootstrap resamples are attached."""
        return self.boot is not None

    # ------------------------------------------------------------- bootstrap
    def bootstrap(self, n_boot=1000, *, random_seed=None) -> "PointFit":
        """Resample runs with replacement and refit each resample.

        Each refit starts from this fit's estimate (warm start) and minimises
        the same objective with the resampled runs, i.e. with each run weighted
        by how often it was drawn.

        Parameters
        ----------
        n_boot : int, default 1000
        random_seed : int, optional
            Default: the spec's ``random_seed``, else a fresh seed (recorded in
            :attr:`boot_seed`).

        Returns
        -------
        PointFit
            A copy of this fit with :attr:`boot` filled.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> boot = fit.bootstrap(50, random_seed=0)
        >>> boot.summary().columns.tolist()
        ['estimate', 'sd', 'lower', 'upper']
        """
        random_seed = _check_seed(random_seed)
        _check_count(n_boot, "n_boot")
        seed = random_seed if random_seed is not None else self.model.random_seed
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        problem = _Problem(self.law, self.model.loss, self.model.delta, self.runs)
        n = self.runs.n_runs
        dof = max(n - len(self.law.param_names), 1)
        x_runs = self.runs.inputs(self.law.inputs)
        log_y = np.log(self.runs.loss)
        thetas, sigmas, ok = [], [], []
        with _one_blas_thread():
            for _ in range(int(n_boot)):
                w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(float)
                with np.errstate(all="ignore"):
                    res = _minimize(problem.single(w), self.theta, self.model.options)
                thetas.append(res.x)
                r = log_y - self._log_curve(x_runs, _to_params(self.law, res.x))
                sigmas.append(float(np.sqrt(np.sum(w * r**2) / dof)))
                drawn = {k: v[w > 0] for k, v in x_runs.items()}
                ok.append(bool(res.success) and res.fun < _BIG and not estimate_problems(self.law, res.x, drawn))
        boot = pd.DataFrame(_to_params(self.law, np.array(thetas)))
        boot["sigma"] = sigmas
        boot["success"] = ok
        boot.index.name = "resample"
        failed = int((~boot["success"]).sum())
        if failed > 0.05 * n_boot:
            warnings.warn(f"{failed} of {n_boot} bootstrap refits did not report convergence; their estimates "
                          "are kept, but check fit.boot", RuntimeWarning, stacklevel=2)
        timing = dict(self.timing, bootstrap_seconds=time.perf_counter() - t0)
        return PointFit(self.model, self.runs, self.theta, self.objective, self.success, self.starts, timing,
                        boot=boot, boot_seed=seed)

    # ------------------------------------------------------------- summaries
    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Parameter table, one row per parameter (law parameters, then ``sigma``).

        Parameters
        ----------
        prob : float, default 0.9
            Probability of the bootstrap interval.
        ci_kind : {"eti", "hdi"}, default "eti"
            Percentile (equal-tailed) or highest-density interval of the
            resamples.

        Returns
        -------
        DataFrame
            The columns every fit's summary starts with
            (:data:`bayescale.contract.SUMMARY_COLUMNS`): ``estimate``, ``sd``
            (bootstrap standard deviation), ``lower`` and ``upper``
            (bootstrap interval). Without :meth:`bootstrap` the fit has no
            parameter interval: ``sd``, ``lower`` and ``upper`` are NaN and
            ``attrs["interval"]`` says ``"point estimate"``. ``attrs``:
            ``prob``, ``interval`` (``"bootstrap percentile"`` or ``"point
            estimate"``), ``n_boot``.

        Examples
        --------
        >>> import bayescale as bs
        >>> table = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True)).summary()
        >>> table.index.tolist(), table.columns.tolist()
        (['E', 'A', 'B', 'alpha', 'beta', 'sigma'], ['estimate', 'sd', 'lower', 'upper'])
        """
        from .contract import interval

        _check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        names = list(self.law.param_names) + ["sigma"]
        est = [self.params[k] for k in self.law.param_names] + [self.sigma]
        table = pd.DataFrame({"estimate": est}, index=pd.Index(names, name="parameter"))
        if self.bootstrapped:
            values = self.boot[names].to_numpy(dtype=float)
            table["sd"] = values.std(axis=0, ddof=1)
            _, table["lower"], table["upper"] = interval(values, prob, ci_kind)
        else:
            table["sd"] = table["lower"] = table["upper"] = np.nan
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind),
                           n_boot=0 if self.boot is None else len(self.boot))
        return table

    # ------------------------------------------------------------ prediction
    def _draws(self, runs, random_seed=None, n_mc=4000):
        """Log curve draws (S, n) and log new-run draws (M, n) at `runs`."""
        inputs = runs.inputs(self.law.inputs)
        if not self.bootstrapped:
            return self._log_curve(inputs, self.params)[None, :], None
        bp = {k: v[:, None] for k, v in self._boot_params().items()}
        curves = self._log_curve({k: v[None, :] for k, v in inputs.items()}, bp)
        rng = np.random.default_rng(self._seed(random_seed))
        pick = rng.integers(0, curves.shape[0], size=n_mc)
        noise = rng.choice(self._residuals, size=(n_mc, curves.shape[1]))
        return curves, curves[pick] + noise

    def predict(self, new_runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None,
                group=None) -> pd.DataFrame:
        """Predicted loss with a curve band and a new-run band, one row per new run.

        Parameters
        ----------
        new_runs : DataFrame, dict of arrays, RunData or path
            Inputs of the law.
        prob : float, default 0.9
        ci_kind : {"eti", "hdi"}, default "eti"
            Percentile (equal-tailed) or highest-density intervals of a
            bootstrapped fit's draws.
        random_seed : int, optional
            Seed of the Monte Carlo new-run band of a bootstrapped fit.
        group : None
            Accepted for the shared read API; a point fit has no groups.

        Returns
        -------
        DataFrame
            Exact quantiles where the fit allows (the estimate and its
            residuals), so the bands may differ in the last digits from the
            Monte Carlo draws of :meth:`predict_draws`. The inputs (and
            ``observed_loss`` if given), then

            - ``loss_median``: the point estimate of the expected loss;
            - ``curve_lower``, ``curve_upper``: bootstrap percentile interval of
              the expected loss (equal to the estimate without bootstrap);
            - ``new_run_lower``, ``new_run_upper``: interval for one new run —
              the curve (or the bootstrapped curves) plus the empirical
              residuals of the fit on log loss.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.predict({"N": [70e9], "D": [1.4e12]}).columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['N', 'D', 'C', 'loss_median', 'curve_lower', 'curve_upper', 'new_run_lower', 'new_run_upper',
         'beyond_C', 'beyond_N', 'beyond_D', 'beyond']
        """
        from .contract import interval
        random_seed = _check_seed(random_seed)
        from .extrapolation import annotate
        from .tablecheck import check_table

        _check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        if group is not None:
            raise ValueError(f"group={group!r}: a point fit has no groups; leave group=None")
        runs = self._new_runs(new_runs, columns)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        point = self._log_curve(runs.inputs(self.law.inputs), self.params)
        curves, new = self._draws(runs, random_seed)
        frame = runs.frame[[c for c in runs.frame.columns if c in ("N", "D", "C", "U", "group", "loss")]].copy()
        if "loss" in frame:
            frame = frame.rename(columns={"loss": "observed_loss"})
        frame["loss_median"] = np.exp(point)
        if new is None:
            frame["curve_lower"] = frame["curve_upper"] = np.exp(point)
            q_lo, q_hi = np.quantile(self._residuals, [lo, hi])
            frame["new_run_lower"], frame["new_run_upper"] = np.exp(point + q_lo), np.exp(point + q_hi)
        else:
            _, c_lo, c_hi = interval(curves, prob, ci_kind)
            _, n_lo, n_hi = interval(new, prob, ci_kind)
            frame["curve_lower"], frame["curve_upper"] = np.exp(c_lo), np.exp(c_hi)
            frame["new_run_lower"], frame["new_run_upper"] = np.exp(n_lo), np.exp(n_hi)
        annotate(frame, self.runs, what="predict", stacklevel=2)
        frame.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind))
        check_table(frame, "predict", problems=self.table_problems("predict"), label="N", stacklevel=2)
        return frame

    def log_predictive_density(self, runs, *, columns=None) -> np.ndarray:
        """Log density of each run's observed log loss under the fit's noise model.

        The noise model is Normal on log loss with scale :attr:`sigma` (plug-in).
        After :meth:`bootstrap` the density is averaged over the resampled
        fits, each with its own ``sigma``.

        Returns
        -------
        ndarray, shape (n_runs,)

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> fit = bs.Approach3().fit(runs)
        >>> fit.log_predictive_density(runs.tail(3)).shape
        (3,)
        """
        from scipy import stats
        from scipy.special import logsumexp

        from .data import load_runs

        runs = load_runs(runs, columns=columns, require=self.law.inputs)
        y = np.log(runs.loss)
        inputs = runs.inputs(self.law.inputs)
        if not self.bootstrapped:
            return stats.norm.logpdf(y, loc=self._log_curve(inputs, self.params), scale=self.sigma)
        bp = {k: v[:, None] for k, v in self._boot_params().items()}
        mu = self._log_curve({k: v[None, :] for k, v in inputs.items()}, bp)
        ll = stats.norm.logpdf(y[None, :], loc=mu, scale=self.boot["sigma"].to_numpy()[:, None])
        return logsumexp(ll, axis=0) - np.log(ll.shape[0])

    # ---------------------------------------------------------------- report
    def fit_report(self, prob=0.9) -> str:
        """Text report in sections: model, data, optimiser, parameters, residuals."""
        t = self.starts
        frame = self.runs.frame
        lines = ["[[Model]]", f"    {self.law.name}: L = {self.law.formula}", f"    {self.model._describe()}",
                 "[[Data]]", f"    {self.runs.n_runs} runs"]
        for k in self.law.inputs:
            lines.append(f"    {k}: {frame[k].min():.3g} to {frame[k].max():.3g}")
        minima = _count_minima(t)
        lines += ["[[Optimiser]]",
                  f"    L-BFGS-B (ftol={self.model.options['ftol']:g}, gtol={self.model.options['gtol']:g}, "
                  f"maxls={self.model.options['maxls']}) from {len(t)} of {t.attrs['n_grid']} grid starts "
                  f"({t.attrs['search']} search), {self.timing['grid_seconds']:.2f} s",
                  f"    best objective {self.objective:.10g}, reached from {int(t['at_best'].sum())} starts; "
                  f"{minima} distinct end points; converged: {'yes' if self.success else 'NO'}"]
        if not self.success:
            lines.append(f"    not converged: {self.reason}")
        table = self.summary(prob)
        if self.bootstrapped:
            lines.append(f"[[Parameters]] (estimate and {prob:.0%} bootstrap percentile interval, "
                         f"{len(self.boot)} resamples, seed {self.boot_seed}, "
                         f"{self.timing['bootstrap_seconds']:.2f} s)")
            for name, row in table.iterrows():
                lines.append(f"    {name:<8} {row['estimate']:<12.5g} [{row['lower']:.5g}, {row['upper']:.5g}]")
        else:
            lines.append("[[Parameters]] (estimate; call fit.bootstrap(1000) for intervals)")
            for name, row in table.iterrows():
                lines.append(f"    {name:<8} {row['estimate']:.5g}")
        q = np.quantile(self._residuals, [0.05, 0.5, 0.95])
        lines += ["[[Residuals]] (log observed - log predicted)",
                  f"    sd {self.sigma:.4g}; 5%, 50%, 95% quantiles {q[0]:.4g}, {q[1]:.4g}, {q[2]:.4g}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        table = self.summary()
        head = (f"PointFit: {self.law.name} law, {self.model._describe()}, {self.runs.n_runs} runs\n"
                f"  best of {len(self.starts)} L-BFGS-B starts, objective {self.objective:.6g}, "
                f"converged: {'yes' if self.success else 'NO (' + self.reason + ')'}"
                + (f"; {len(self.boot)} bootstrap resamples\n" if self.bootstrapped else "\n"))
        tail = ("\nNext: fit.summary(), fit.predict(new_runs), fit.allocate(budget), fit.fit_report()"
                + ("" if self.bootstrapped else ", fit.bootstrap(1000)"))
        return head + table.to_string(float_format=lambda v: f"{v:.5g}") + tail

    def _repr_html_(self) -> str:
        return ("<pre>" + repr(self).split("\n")[0] + "</pre>"
                + self.summary().to_html(float_format=lambda v: f"{v:.5g}")
                + "<p>Next: <code>fit.predict(new_runs)</code>, <code>fit.allocate(budget)</code>, "
                  "<code>fit.fit_report()</code></p>")


def _count_minima(table) -> int:
    ok = table[table["success"]] if table["success"].any() else table
    return int(np.unique(np.round(np.log(np.maximum(ok["objective"].to_numpy(), 1e-300)), 6)).size)




# ------------------------------------------------------------------- Approach 2
class IsoFLOP:
    """Chinchilla Approach 2: isoFLOP profiles (settings; data goes into :meth:`fit`).

    Runs are grouped at common compute levels. In each level the loss is
    fitted by a parabola in log N; its vertex gives N_opt(C) and
    ``D_opt = C / (k N_opt)``. Then ``log N_opt = log k_N + a log C`` and
    ``log D_opt = log k_D + b log C`` by least squares.

    Parameters
    ----------
    resolution : float, default 0.1
        Width of a compute level in decades: runs are grouped by
        ``round(log10 C / resolution)``; with `levels`, runs within
        ``resolution / 2`` decades of a level join it.
    levels : sequence of float, optional
        Compute levels in FLOPs (e.g. the budgets of the isoFLOP sweeps).
    group : str, optional
        Name of a column that labels the level of each run (overrides the
        two above).
    min_runs : int, default 5
        Fewest runs in a level for its parabola to be used.
    flops_per_param_token : float, default 6

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.IsoFLOP(resolution=0.25).fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> round(fit.a, 2), round(fit.b, 2)
    (0.5, 0.5)
    """

    def __init__(self, *, resolution=0.1, levels=None, group=None, min_runs=5, flops_per_param_token=6.0):
        if not (isinstance(resolution, (int, float)) and not isinstance(resolution, bool) and resolution > 0):
            raise SpecError(f"resolution must be a positive number of decades, got {resolution!r}")
        _check_count(min_runs, "min_runs")
        if min_runs < 3:
            raise SpecError(f"min_runs must be at least 3 (a parabola has 3 coefficients), got {min_runs}")
        self.resolution = float(resolution)
        self.levels = None if levels is None else _budgets(levels)
        self.group = group
        self.min_runs = int(min_runs)
        self.flops_per_param_token = float(_positive(flops_per_param_token, "flops_per_param_token"))

    def __repr__(self) -> str:
        how = (f"group={self.group!r}" if self.group is not None else
               f"levels={len(self.levels)}" if self.levels is not None else f"resolution={self.resolution:g}")
        return f"IsoFLOP({how}, min_runs={self.min_runs})"

    def _labels(self, runs):
        frame = runs.frame
        log_c = np.log10(frame["C"].to_numpy(dtype=float))
        if self.group is not None:
            if self.group not in frame.columns:
                raise SpecError(f"group column {self.group!r} not in the runs; "
                                f"columns: {', '.join(map(str, frame.columns))}")
            return frame[self.group].astype(str).to_numpy(), None
        if self.levels is not None:
            lv = np.log10(self.levels)
            dist = np.abs(log_c[:, None] - lv[None, :])
            near = dist.argmin(axis=1)
            inside = dist.min(axis=1) <= self.resolution / 2
            labels = np.where(inside, near, -1)
            return labels, dict(enumerate(self.levels))
        return np.round(log_c / self.resolution).astype(int), None

    def fit(self, runs, *, columns=None) -> "IsoFLOPFit":
        """Fit the isoFLOP parabolas and the power laws of N_opt and D_opt in C.

        Parameters
        ----------
        runs : RunData, DataFrame, dict of arrays or path
            Needs ``N``, ``loss`` and ``C`` (or ``D``, from which C = 6 N D).

        Returns
        -------
        IsoFLOPFit
        """
        from .data import load_runs

        runs = load_runs(runs, columns=columns, require=("N", "C"), min_runs=self.min_runs)
        labels, named = self._labels(runs)
        frame = runs.frame
        log_n = np.log(frame["N"].to_numpy(dtype=float))
        loss = frame["loss"].to_numpy(dtype=float)
        c = frame["C"].to_numpy(dtype=float)
        rows = []
        for lab in pd.unique(labels):
            if named is not None and lab == -1:
                continue
            m = labels == lab
            level_c = named[lab] if named is not None else float(np.exp(np.mean(np.log(c[m]))))
            row = {"level": lab, "C": level_c, "n_runs": int(m.sum()), "N_opt": np.nan, "D_opt": np.nan,
                   "loss_min": np.nan, "curvature": np.nan, "used": False, "reason": ""}
            if m.sum() < self.min_runs:
                row["reason"] = f"fewer than {self.min_runs} runs"
            elif np.ptp(log_n[m]) <= 0:
                row["reason"] = "a single model size"
            else:
                c2, c1, c0 = np.polyfit(log_n[m], loss[m], 2)
                row["curvature"] = c2
                if c2 <= 0:
                    row["reason"] = "parabola opens downwards"
                else:
                    x = -c1 / (2 * c2)
                    if not log_n[m].min() <= x <= log_n[m].max():
                        row["reason"] = "minimum outside the sampled model sizes"
                    else:
                        row.update(N_opt=float(np.exp(x)), loss_min=float(c0 - c1 * c1 / (4 * c2)), used=True)
                        row["D_opt"] = level_c / (self.flops_per_param_token * row["N_opt"])
            rows.append(row)
        table = pd.DataFrame(rows).sort_values("C").reset_index(drop=True)
        used = table[table["used"]]
        if len(used) < 3:
            raise BayescaleError(
                f"only {len(used)} compute level(s) give an interior parabola minimum; Approach 2 needs at "
                f"least 3. Levels found: {len(table)} (see resolution=, levels= or group=)")
        fit = IsoFLOPFit(self, runs, table)
        if not fit.converged:
            warnings.warn(ConvergenceWarning(f"isoFLOP fit did not converge: {fit.reason}"), stacklevel=2)
        return fit


class IsoFLOPFit:
    """Result of :meth:`IsoFLOP.fit`: exponents a, b of ``N_opt ∝ C^a``, ``D_opt ∝ C^b``.

    Attributes
    ----------
    levels : DataFrame
        One row per compute level: ``C``, ``n_runs``, ``N_opt``, ``D_opt``,
        ``loss_min``, ``curvature``, ``used`` and the ``reason`` a level was not.
    a, b : float
        Exponents of N_opt and D_opt in C (``a + b = 1`` since ``D_opt = C / (k N_opt)``).
    params : dict
        ``a``, ``b``, ``log_kN``, ``log_kD`` (intercepts, natural log).
    converged : bool
        Whether the fitted exponents describe an allocation: ``0 < a < 1``
        (both N_opt and D_opt grow with compute) and finite.
    reason : str
        Why not ("" when converged).
    """

    def __init__(self, model, runs, levels):
        self.model = model
        self.runs = runs
        self.levels = levels
        used = levels[levels["used"]]
        x = np.log(used["C"].to_numpy(dtype=float))
        self._x = x
        self._fits = {}
        for name, col in (("N", "N_opt"), ("D", "D_opt")):
            y = np.log(used[col].to_numpy(dtype=float))
            X = np.column_stack([np.ones_like(x), x])
            coef, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ coef
            dof = max(len(x) - 2, 1)
            s2 = float(resid @ resid / dof)
            self._fits[name] = (coef, s2 * np.linalg.inv(X.T @ X), dof)
        self.a = float(self._fits["N"][0][1])
        self.b = float(self._fits["D"][0][1])
        self.params = {"a": self.a, "b": self.b, "log_kN": float(self._fits["N"][0][0]),
                       "log_kD": float(self._fits["D"][0][0])}
        if not all(np.isfinite(v) for v in self.params.values()):
            self.reason = "the fitted lines are not finite"
        elif not 0 < self.a < 1:
            self.reason = (f"a = {self.a:.3g}: N_opt ∝ C^a needs 0 < a < 1 for both the model size and the tokens to "
                           "grow with compute")
        else:
            self.reason = ""
        self.converged = not self.reason

    #: Its intervals are Student-t intervals of the log-log lines (:func:`bayescale.contract.interval_label`).
    draws_kind = "t"

    @property
    def converged(self) -> bool:
        """True: the line fits are closed-form; levels without an interior minimum are left out (:attr:`levels`)."""
        return True

    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Exponents and intercepts with least-squares standard errors and t intervals.

        Parameters
        ----------
        prob : float, default 0.9
        ci_kind : {"eti", "hdi"}
            Accepted for the shared read API; a t interval is both.

        Returns
        -------
        DataFrame
            Rows ``a``, ``b``, ``log_kN``, ``log_kD``; columns ``estimate``,
            ``sd``, ``lower``, ``upper``; ``attrs``: ``prob``, ``interval``
            (``"t interval"``).
        """
        from scipy import stats

        _check_prob(prob)
        check_ci_kind(ci_kind)
        rows = []
        for name, (which, j) in {"a": ("N", 1), "b": ("D", 1), "log_kN": ("N", 0), "log_kD": ("D", 0)}.items():
            coef, cov, dof = self._fits[which]
            sd = float(np.sqrt(cov[j, j]))
            t = stats.t.ppf((1 + prob) / 2, dof)
            rows.append((name, coef[j], sd, coef[j] - t * sd, coef[j] + t * sd))
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "sd", "lower", "upper"]).set_index("parameter")
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind))
        return table

    def predict(self, new_runs, prob=0.9, **_ignored):
        raise BayescaleError("an isoFLOP (Approach 2) fit gives compute-optimal allocations, not losses at given "
                             "(N, D); use fit.allocate(budget), or a PointModel / ScalingModel for predictions")

    def allocate(self, budget, prob=0.9, *, flops_per_param_token=None, max_unique_tokens=None) -> pd.DataFrame:
        """N_opt and D_opt at each budget from the fitted power laws, with t intervals of the line.

        Parameters
        ----------
        budget : float or sequence of float
            Compute budgets in FLOPs.
        prob : float, default 0.9
        flops_per_param_token : float, optional
            k in ``C = k N D``; default the spec's (:class:`IsoFLOP`). The
            model-size line does not depend on it; D and tokens per parameter
            follow as ``D = C / (k N)``.
        max_unique_tokens : None
            Not supported (no data-repetition model).

        Returns
        -------
        DataFrame
            The columns of :meth:`ScalingFit.allocate` for N, D and tokens per
            parameter, without ``loss_*``: Approach 2 does not model the loss
            away from the profiles (``fit.levels["loss_min"]`` holds the
            profiles' minima). ``k N_median D_median = C`` holds to rounding.
            A fit that did not converge (:attr:`reason`) warns.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.IsoFLOP(resolution=0.25).fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.allocate([1e21, 1e24])[["C", "N_median", "tokens_per_param_median"]].shape
        (2, 3)
        """
        from scipy import stats

        from .tablecheck import check_table

        _check_prob(prob)
        if max_unique_tokens is not None:
            raise SpecError("an isoFLOP fit has no data-repetition model; max_unique_tokens is not supported")
        k_fit = self.model.flops_per_param_token
        k = k_fit if flops_per_param_token is None else float(_positive(flops_per_param_token,
                                                                          "flops_per_param_token"))
        shift = np.log(k_fit / k)  # D = C / (k N): the D line was fitted with the spec's k
        c = _budgets(budget)
        lx = np.log(c)
        X = np.column_stack([np.ones_like(lx), lx])
        frame = pd.DataFrame({"C": c})
        out = {}
        for name in ("N", "D"):
            coef, cov, dof = self._fits[name]
            mean = X @ coef
            se = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
            t = stats.t.ppf((1 + prob) / 2, dof)
            out[name] = (mean, mean - t * se, mean + t * se)
        out["D"] = tuple(v + shift for v in out["D"])
        for name in ("N", "D"):
            mean, lo, hi = out[name]
            frame[f"{name}_median"] = np.exp(mean)
            frame[f"{name}_lower"], frame[f"{name}_upper"] = np.exp(lo), np.exp(hi)
        ratio = out["D"][0] - out["N"][0]
        frame["tokens_per_param_median"] = np.exp(ratio)
        # D/N bounds from the N and D bands (conservative: the two lines share their data).
        frame["tokens_per_param_lower"] = np.exp(out["D"][1] - out["N"][2])
        frame["tokens_per_param_upper"] = np.exp(out["D"][2] - out["N"][1])
        from .extrapolation import annotate

        annotate(frame, self.runs, what="allocate", n="N_median", d="D_median",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=k, stacklevel=2)
        frame["converged"] = self.converged
        frame.attrs.update(prob=prob, law="isoflop", flops_per_param_token=k, max_unique_tokens=None)
        check_table(frame, "allocate", plan=("N_median", "D_median"), stacklevel=2,
                    problems=[] if self.converged else [f"the isoFLOP fit did not converge ({self.reason})"])
        return frame

    def fit_report(self, prob=0.9) -> str:
        """Text report: levels used and the fitted exponents."""
        used = self.levels[self.levels["used"]]
        lines = ["[[Model]]", "    Approach 2 (isoFLOP profiles): parabola of loss in log N per compute level,",
                 "    then N_opt = k_N C^a, D_opt = k_D C^b", "[[Levels]]",
                 f"    {len(used)} of {len(self.levels)} levels used ({self.runs.n_runs} runs)"]
        for _, r in self.levels.iterrows():
            what = f"N_opt {r['N_opt']:.3g}, D_opt {r['D_opt']:.3g}" if r["used"] else f"not used: {r['reason']}"
            lines.append(f"    C {r['C']:.3g}: {r['n_runs']} runs, {what}")
        if not self.converged:
            lines.append(f"    not converged: {self.reason}")
        lines.append(f"[[Exponents]] (estimate and {prob:.0%} t interval)")
        for name, row in self.summary(prob).iterrows():
            lines.append(f"    {name:<7} {row['estimate']:<10.4g} [{row['lower']:.4g}, {row['upper']:.4g}]")
        return "\n".join(lines)

    def __repr__(self) -> str:
        used = int(self.levels["used"].sum())
        return (f"IsoFLOPFit: N_opt ∝ C^{self.a:.3f}, D_opt ∝ C^{self.b:.3f} from {used} compute levels\n"
                "Next: fit.summary(), fit.levels, fit.allocate(budget), fit.fit_report()")
