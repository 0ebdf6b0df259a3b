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

The law is evaluated through :meth:`bayescale.core.laws.Law.log_loss`, the same
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
(:class:`~bayescale.base.errors.DegenerateResultWarning`).
"""


from __future__ import annotations

import time


from ..base.errors import ConvergenceWarning, SpecError
from ..core.laws import Law, get_law
from ..base.validation import check_count, check_seed as _check_seed
from ..core.pointsearch import (LOSSES, PROGRESS_RUNS, SEARCHES, Problem, coordinate_name, grid_search, grid_starts,
                                default_grid, published_grid)
from .pointfit import PointFit
from .isoflop import IsoFLOP, IsoFLOPFit
from ..base.errors import warn_user
from ..core.assumptions import check_assumptions
from ..runs.data import load_runs
from ..base.progress import interactive

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
        check_count(n_boot, "n_boot", allow_zero=True)
        self.loss = loss
        self.delta = float(delta)
        self.grid = default_grid(self.law) if grid is None else grid
        self.starts = grid_starts(self.law, self.grid)
        self.search = search
        self.n_boot = int(n_boot)
        self.random_seed = random_seed
        self.options = {"ftol": float(ftol), "gtol": float(gtol), "maxls": int(maxls),
                        "maxiter": int(maxiter), "maxfun": int(maxiter)}

    @property
    def coords(self) -> tuple:
        """Names of the optimisation coordinates (``log_E``, ``log_A``, ..., ``alpha`` ...)."""
        return tuple(coordinate_name(p) for p in self.law.parameters)

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

        runs = load_runs(runs, columns=columns, require=self.law.inputs, min_runs=len(self.law.param_names) + 1)
        check_assumptions(runs)
        t0 = time.perf_counter()
        problem = Problem(self.law, self.loss, self.delta, runs)
        if progressbar is None:
            progressbar = runs.n_runs >= PROGRESS_RUNS and interactive()
        best, table = grid_search(problem, self.starts, self.coords, self.search, self.options, bool(progressbar))
        seconds = time.perf_counter() - t0
        fit = PointFit(self, runs, best.x, float(best.fun), bool(best.success), table,
                       {"grid_seconds": seconds})
        if not fit.success:
            warn_user(ConvergenceWarning(f"{type(self).__name__} fit did not converge: {fit.reason}"),
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
