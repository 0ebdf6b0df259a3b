"""A law published in a paper, read like a point fit: :class:`PublishedLaw`, its headline and allocation rule.

The entries themselves (the papers' numbers, with their references) are in :mod:`bayescale.fitting.published`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.contract import check_ci_kind, check_group, interval, interval_label
from ..runs.data import load_runs
from ..base.errors import SpecError
from ..core.extrapolation import Reach, annotate
from ..core.laws import NUMPY, get_law
from ..analysis.predictive import predict as _predict
from ..core.priors import LogNormal
from .results import ResultMethods
from ..base.units import PF_DAY
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_prob, positive_array

__all__ = ["PublishedLaw", "PowerAllocation", "Headline"]


@dataclass(frozen=True)
class PowerAllocation:
    """A published compute-optimal allocation: ``quantity = coef * (C / unit) ** exponent``.

    Parameters
    ----------
    quantity : {"N", "D", "M"}
        What the power law gives: parameters, tokens, or non-embedding FLOPs per token
        (``M = k N``, DeepSeek's model scale).
    coef, exponent : float
    unit : float, default 1
        FLOPs in one unit of C (:data:`PF_DAY` for Kaplan et al.).

    Examples
    --------
    >>> rule = PowerAllocation("D", 0.29, 0.53)
    >>> f"{float(rule.n_opt(3.8e25)):.4g}"
    '6.053e+11'
    """

    quantity: str
    coef: float
    exponent: float
    unit: float = 1.0

    def value(self, budget):
        """The published quantity at `budget` FLOPs."""
        return self.coef * (np.asarray(budget, dtype=float) / self.unit) ** self.exponent

    def n_opt(self, budget, flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
        """N_opt at `budget`: the rule's N, or N from its M (``M / k``) or its D (``C / (k D)``)."""
        k = float(flops_per_param_token)
        v = self.value(budget)
        if self.quantity == "N":
            return v
        if self.quantity == "M":
            return v / k
        return np.asarray(budget, dtype=float) / (k * v)

    def formula(self) -> str:
        """The rule as text."""
        c = "C" if self.unit == 1.0 else f"(C / {self.unit:.3g} FLOP)"
        return f"{self.quantity}_opt = {self.coef:g} {c}^{self.exponent:g}"


@dataclass(frozen=True)
class Headline:
    """A paper's headline allocation: N_opt and tokens per parameter at its budget C.

    ``N`` and ``tokens_per_param`` are the paper's formula evaluated at ``C`` (``how`` says which
    formula); ``printed`` holds numbers the paper prints there, when it prints any.
    """

    C: float
    N: float
    tokens_per_param: float
    how: str
    printed: str = ""


def loss_law_only(method):
    """`method` of :class:`~bayescale.fitting.results.ResultMethods` for a published loss law, refused (naming it)
    for an entry without a loss law or with an allocation rule; same signature and docstring as `method`.

    Examples
    --------
    >>> import inspect
    >>> from bayescale.fitting.results import ResultMethods
    >>> inspect.signature(PublishedLaw.risk) == inspect.signature(ResultMethods.risk)
    True
    """
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        self._need_law(method.__name__)
        self._need_rule_free(method.__name__)
        return method(self, *args, **kwargs)

    return guarded


class PublishedLaw(ResultMethods):
    """A scaling law from the literature, usable like a fit (:mod:`bayescale.analysis.contract`) and as priors.

    Made by :func:`published`; see :mod:`bayescale.fitting.published` for the entries.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"hoffmann2022"``.
    short : str
        Authors and year, e.g. ``"Hoffmann et al. 2022"``.
    reference : str
        Authors, year, title and arXiv id.
    source : str
        Where in the paper the numbers are (table or equation).
    law : Law or None
        The loss law, or None for an allocation rule without one.
    params : dict or None
        The published parameters (the law's names).
    draws : DataFrame or None
        Parameter draws expressing the published uncertainty (one row per draw).
    rule : PowerAllocation or None
        The published allocation rule, when the paper publishes one instead of a loss law's optimum.
    reach : Reach
        The range of runs the law was fitted on (N, D, C and tokens per parameter).
    data_range : dict
        The published ranges as ``{quantity: (low, high)}``.
    headline : Headline
        N_opt and tokens per parameter at the paper's budget.
    notes : str
        Conventions and caveats (N counting, rounding, what the draws are).
    """

    #: Published laws carry no form discrepancy and no groups.
    form_uncertainty = None
    hierarchical = False
    converged = True
    random_seed = 0
    model = None

    def __init__(self, name, *, short, reference, source, data_range, headline, law=None, params=None, draws=None,
                 rule=None, runs=None, notes=""):
        self.name = name
        self.short = short
        self.reference = reference
        self.source = source
        self.law = None if law is None else get_law(law)
        self.params = None if params is None else {k: float(v) for k, v in params.items()}
        self.draws = draws
        self.rule = rule
        self.data_range = dict(data_range)
        self.headline = headline
        self.notes = notes
        if self.law is not None:
            if runs is None:
                runs = _corner_runs(self.data_range)
            self.runs = load_runs(runs, require=("N", "D"), require_loss=False)
            self.reach = Reach.from_runs(self.runs)
        else:
            self.runs = None
            self.reach = _reach_of(self.data_range)

    # ------------------------------------------------------------------ contract
    @property
    def draws_kind(self) -> str:
        """``"bootstrap"`` for an entry with draws, else ``"point"``."""
        return "point" if self.draws is None else "bootstrap"

    @property
    def point_params(self):
        """The published parameters (the tables' central values)."""
        return None if self.params is None else dict(self.params)

    @property
    def draw_shape(self) -> tuple:
        """(1, draws) or (1, 1) for a point entry."""
        return (1, 1 if self.draws is None else len(self.draws))

    def param_draws(self, group=None, *, random_seed=None) -> dict:
        """Parameter draws shaped (1, S), with ``sigma = 0`` (no published run-to-run scatter).

        Examples
        --------
        >>> import bayescale as bs
        >>> bs.published("besiroglu2024").param_draws()["alpha"].shape
        (1, 1000)
        """
        check_group(self, group)
        law = self._need_law("param_draws")
        if self.draws is None:
            out = {k: np.full((1, 1), self.params[k]) for k in law.param_names}
        else:
            out = {k: self.draws[k].to_numpy(dtype=float)[None, :] for k in law.param_names}
        out["sigma"] = np.zeros(out[law.param_names[0]].shape)
        return out

    def noise_draws(self, params, shape, rng) -> np.ndarray:
        """No published run-to-run scatter: zeros (a new run's band is the curve's)."""
        return np.zeros(shape)

    def residuals(self) -> np.ndarray:
        """A published law comes without its runs' residuals: an empty array."""
        return np.zeros(0)

    def log_predictive_density(self, runs, *, columns=None):
        """Not available: the paper publishes no likelihood of its runs."""
        raise SpecError(f"published law {self.name!r} has no likelihood (no run-to-run scatter is published); "
                        "fit a model to runs to score them")

    log_likelihood_draws = log_predictive_density

    def table_problems(self, what) -> list:
        """Problems every table carries: none (the published values are taken as they stand)."""
        return []

    # ------------------------------------------------------------------ helpers
    def _need_law(self, what):
        if self.law is None:
            raise SpecError(f"published law {self.name!r} is an allocation rule ({self.rule.formula()}) without a "
                            f"loss law, so {what} is not available; its allocate() is")
        return self.law

    def __repr__(self):
        kind = self.law.name if self.law is not None else "allocation rule"
        return f"<PublishedLaw {self.name!r}: {kind}, {self.draws_kind}; {self.reference}>"

    # ------------------------------------------------------------------ tables
    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """The published parameters, with the draws' sd and interval where the entry has draws.

        Returns
        -------
        DataFrame
            Index ``parameter``; columns ``estimate`` (the published value), ``sd``, ``lower``,
            ``upper`` (NaN for a point entry). An allocation rule lists its coefficient and
            exponent. ``attrs``: ``prob``, ``interval``, ``reference``, ``source``.

        Examples
        --------
        >>> import bayescale as bs
        >>> bs.published("hoffmann2022").summary()["estimate"].round(2).tolist()
        [1.69, 406.4, 410.7, 0.34, 0.28]
        """
        check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        if self.law is None:
            table = pd.DataFrame({"estimate": [self.rule.coef, self.rule.exponent]},
                                 index=pd.Index(["coef", "exponent"], name="parameter"))
        else:
            names = list(self.law.param_names)
            table = pd.DataFrame({"estimate": [self.params[k] for k in names]},
                                 index=pd.Index(names, name="parameter"))
        if self.draws is None:
            table["sd"] = table["lower"] = table["upper"] = np.nan
        else:
            values = self.draws[list(table.index)].to_numpy(dtype=float)
            table["sd"] = values.std(axis=0, ddof=1)
            _, table["lower"], table["upper"] = interval(values, prob, ci_kind)
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind), reference=self.reference,
                           source=self.source)
        return table

    def predict(self, new_runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None,
                group=None) -> pd.DataFrame:
        """Predicted loss at new runs, with the band of the published uncertainty.

        The columns of :func:`bayescale.analysis.predictive.predict`. Without published run-to-run
        scatter the new-run band equals the curve band; for a point entry both collapse onto
        the law's value.

        Examples
        --------
        >>> import bayescale as bs
        >>> table = bs.published("hoffmann2022").predict({"N": [70e9], "D": [1.4e12]})
        >>> round(float(table["loss_median"].iloc[0]), 3)
        1.937
        """
        self._need_law("predict")
        return _predict(self, new_runs, prob, ci_kind=ci_kind, random_seed=random_seed, columns=columns,
                        group=group)

    def allocate(self, budget, prob=0.9, *, ci_kind="eti", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                 max_unique_tokens=None, group=None):
        """Compute-optimal N, D, tokens per parameter and loss at each budget, as published.

        A loss law's allocation is its optimum (:func:`bayescale.analysis.planning.allocate`, with
        percentile intervals over the draws); an allocation rule's is the rule, with ``loss_*``
        the loss law at the rule's plan where the paper gives one (NaN otherwise).

        Examples
        --------
        >>> import bayescale as bs
        >>> row = bs.published("hoffmann2022").allocate(5.76e23).iloc[0]
        >>> f"{row['N_median']:.3g} {row['tokens_per_param_median']:.3g}"
        '3.22e+10 92.6'
        """
        if self.rule is None:
            return super().allocate(budget, prob, ci_kind=ci_kind, flops_per_param_token=flops_per_param_token,
                                    max_unique_tokens=max_unique_tokens, group=group)
        check_prob(prob)
        check_ci_kind(ci_kind)
        check_group(self, group)
        if max_unique_tokens is not None:
            raise SpecError(f"published law {self.name!r} is an allocation rule for fresh data; it has no "
                            "answer under a cap on unique tokens (max_unique_tokens)")
        k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
        c = check_budgets(budget)
        n = np.asarray(self.rule.n_opt(c, k), dtype=float)
        d = c / (k * n)
        frame = pd.DataFrame({"C": c})
        for name, v in (("N", n), ("D", d), ("tokens_per_param", d / n), ("loss", self._loss_at(n, d))):
            frame[f"{name}_median"] = frame[f"{name}_lower"] = frame[f"{name}_upper"] = v
        annotate(frame, self.reach, what="allocate", n="N_median", d="D_median", c="C",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=k, stacklevel=3)
        frame["converged"] = True
        frame.attrs.update(prob=prob, interval=interval_label("point", ci_kind),
                           law=self.law.name if self.law is not None else "allocation rule", caveats=[],
                           flops_per_param_token=k, max_unique_tokens=None, reference=self.reference)
        return frame

    def allocate_draws(self, budget, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
                       group=None):
        """Draws of the optimal allocation (:func:`bayescale.analysis.planning.allocate_draws`); loss laws only."""
        self._need_rule_free("allocate_draws")
        return super().allocate_draws(budget, flops_per_param_token=flops_per_param_token,
                                      max_unique_tokens=max_unique_tokens, group=group)

    def _need_rule_free(self, what):
        if self.rule is not None:
            raise SpecError(f"published law {self.name!r} allocates by its published rule ({self.rule.formula()}), "
                            f"not by its loss law's optimum, so {what} (which plans at the law's optimum) would not "
                            "agree with its allocate(); use allocate(), or predict() at your own plan")

    risk = loss_law_only(ResultMethods.risk)
    budget_for = loss_law_only(ResultMethods.budget_for)
    marginal_returns = loss_law_only(ResultMethods.marginal_returns)

    def _loss_at(self, n, d):
        if self.law is None or set(self.law.inputs) != {"N", "D"}:
            return np.full(np.shape(n), np.nan)
        return np.exp(np.asarray(self.law.log_loss({"N": n, "D": d}, self.params, NUMPY), dtype=float))

    # ------------------------------------------------------------------ priors
    def as_priors(self, *, widen=1.0, sigma=None) -> dict:
        """Priors for :class:`~bayescale.ScalingModel` centred on this law, one per law parameter.

        Each prior is a :class:`~bayescale.core.priors.LogNormal`. Exponents, the irreducible loss
        and shape parameters: on the parameter. Coefficients (``A``, ``B``): on the term's
        value at the centre of the published data range (``at``, the geometric mean of its
        N or D range), where it is far less correlated with its exponent than ``A`` itself.
        The centre is the median of the draws on the log scale, the spread their sd on the
        log scale times `widen`; an entry without published uncertainty needs `sigma`.

        Parameters
        ----------
        widen : float, default 1
            Factor on the draws' spread (e.g. 2 for a new ladder that may differ from the
            paper's).
        sigma : float, optional
            Spread on the log scale for an entry without draws (required there; for an entry
            with draws it replaces the draws' spread).

        Returns
        -------
        dict
            ``{parameter: LogNormal}``, for ``ScalingModel(law, priors=...)``.

        Examples
        --------
        >>> import bayescale as bs
        >>> priors = bs.published("besiroglu2024").as_priors(widen=2)
        >>> sorted(priors)
        ['A', 'B', 'E', 'alpha', 'beta']
        >>> model = bs.ScalingModel("chinchilla", priors=priors)
        """
        law = self._need_law("as_priors")
        widen = float(positive_array(widen, "widen"))
        if sigma is not None:
            sigma = float(positive_array(sigma, "sigma"))
        elif self.draws is None:
            raise SpecError(f"published law {self.name!r} publishes no uncertainty; pass sigma= (the spread on the "
                            "log scale you grant its parameters, e.g. 0.1)")
        centres = {q: float(np.sqrt(self.reach.lower[q] * self.reach.upper[q])) for q in ("N", "D")}
        out = {}
        for p in law.parameters:
            at = None
            if p.kind == "coefficient" and p.scales_with is not None and isinstance(p.scales_with[1], str):
                at = centres[p.scales_with[0]]
            values = self._log_term(p, at)
            centre = float(np.median(values))
            spread = sigma if sigma is not None else float(np.std(values, ddof=1)) * widen
            out[p.name] = LogNormal(mu=centre, sigma=spread, at=at)
        return out

    def _log_term(self, p, at):
        """Log of the parameter (or of its term at `at`) for each draw, or the published value alone."""
        source = self.draws if self.draws is not None else pd.DataFrame([self.params])
        values = np.log(source[p.name].to_numpy(dtype=float))
        if at is not None:
            values = values - source[p.scales_with[1]].to_numpy(dtype=float) * np.log(at)
        return values


# ---------------------------------------------------------------------------- ranges
def _corner_runs(data_range) -> pd.DataFrame:
    """The four corners of a published (N, D) range, standing for the runs the law was fitted on."""
    (n_lo, n_hi), (d_lo, d_hi) = data_range["N"], data_range["D"]
    return pd.DataFrame({"N": [n_lo, n_lo, n_hi, n_hi], "D": [d_lo, d_hi, d_lo, d_hi]})


def _reach_of(data_range) -> Reach:
    lower = {q: float(v[0]) for q, v in data_range.items() if q in ("C", "N", "D")}
    upper = {q: float(v[1]) for q, v in data_range.items() if q in ("C", "N", "D")}
    return Reach(lower, upper)
