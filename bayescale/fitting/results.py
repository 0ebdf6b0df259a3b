"""The read API every fit shares, written once against :mod:`bayescale.analysis.contract`.

:class:`ResultMethods` gives a fit type its ``predict_draws``, ``allocate``,
``allocate_draws``, ``risk``, ``budget_for`` and ``plot_*`` methods; the fit
type supplies the contract (parameter draws, noise draws, ``converged``, the
kind of its draws). :class:`~bayescale.fitting.fit.ScalingFit` and
:class:`~bayescale.fitting.point.PointFit` both inherit it, so the same call gives the
same table — with the fit's own interval kind in ``attrs["interval"]``.
"""

from __future__ import annotations

from ..analysis import nextrun, planning, plots, predictive, returns, risk
from ..base.validation import FLOPS_PER_PARAM_TOKEN, renamed

__all__ = ["ResultMethods", "register_writer", "writer"]

#: Writers of documents about a fit, registered by the front ends that define them (``"report"``:
#: :func:`bayescale.front.report.report`, registered when the package is imported). A result calls them by name, so
#: it needs no import of the layers above it.
_WRITERS: dict = {}


def register_writer(name: str, func) -> None:
    """Register `func` as the writer `name` of documents about a fit (called by the front-end modules)."""
    _WRITERS[name] = func


def writer(name: str):
    """The registered writer `name`; a clear error when its module was never imported."""
    if name not in _WRITERS:
        raise RuntimeError(f"no {name!r} writer is registered; import bayescale (or bayescale.{name}) first")
    return _WRITERS[name]


class ResultMethods:
    """Predictions, allocations, risk and figures of a fit (any :class:`~bayescale.analysis.contract.ScalingResult`)."""

    def predict_draws(self, new_runs, *, random_seed=None, columns=None, group=None):
        """Draws of the expected loss and a new run's loss; see :func:`bayescale.analysis.predictive.predict_draws`."""
        return predictive.predict_draws(self, new_runs, random_seed=random_seed, columns=columns, group=group)

    def allocate(self, budget, prob=0.9, *, ci_kind="eti", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                 max_unique_tokens=None, group=None):
        """Compute-optimal N, D, tokens per parameter and loss per budget; see :func:`bayescale.analysis.planning.allocate`."""
        return planning.allocate(self, budget, prob=prob, ci_kind=ci_kind,
                                   flops_per_param_token=flops_per_param_token,
                                   max_unique_tokens=max_unique_tokens, group=group)

    def allocate_draws(self, budget, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
                       group=None):
        """Draws of the optimal allocation; see :func:`bayescale.analysis.planning.allocate_draws`."""
        return planning.allocate_draws(self, budget, flops_per_param_token=flops_per_param_token,
                                         max_unique_tokens=max_unique_tokens, group=group)

    def risk(self, budget=None, *, target=None, plan=None, prob=0.9, ci_kind="eti",
             flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, random_seed=None, group=None):
        """Predictive loss bands, P(loss <= target) and allocation penalty; see :func:`bayescale.analysis.risk.risk`."""
        return risk.risk(self, budget, target=target, plan=plan, prob=prob, ci_kind=ci_kind,
                         flops_per_param_token=flops_per_param_token, max_unique_tokens=max_unique_tokens,
                         random_seed=random_seed, group=group)

    def budget_for(self, target, prob=0.9, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
                   random_seed=None, max_compute=1e40, group=None):
        """Smallest compute reaching `target` with probability `prob`; see :func:`bayescale.analysis.risk.budget_for`."""
        return risk.budget_for(self, target, prob, flops_per_param_token=flops_per_param_token,
                               max_unique_tokens=max_unique_tokens, random_seed=random_seed, max_compute=max_compute,
                               group=group)

    def marginal_returns(self, budget, prob=0.9, *, ci_kind="eti", cost_per_flop=None, loss_step=0.01,
                         flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, group=None,
                         max_compute=1e40):
        """Slope, gain per doubling, compute for the next 0.01 of loss: :func:`bayescale.analysis.returns.marginal_returns`."""
        return returns.marginal_returns(self, budget, prob, ci_kind=ci_kind, cost_per_flop=cost_per_flop,
                                        loss_step=loss_step, flops_per_param_token=flops_per_param_token,
                                        max_unique_tokens=max_unique_tokens, group=group, max_compute=max_compute)

    def plot_marginal_returns(self, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                              max_unique_tokens=None, group=None, ax=None):
        """d loss / d log10 C vs compute with bands; see :func:`bayescale.analysis.returns.plot_marginal_returns`."""
        return returns.plot_marginal_returns(self, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                                             max_unique_tokens=max_unique_tokens, group=group, ax=ax)

    @renamed(budgets="budget")
    def plot_frontier(self, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                      max_unique_tokens=None, group=None, new_run=True, random_seed=None, ax=None):
        """Loss vs compute with the optimal frontier and bands; see :func:`bayescale.analysis.plots.plot_frontier`."""
        return plots.plot_frontier(self, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                                   max_unique_tokens=max_unique_tokens, group=group, new_run=new_run,
                                   random_seed=random_seed, ax=ax)

    @renamed(budgets="budget")
    def plot_allocation(self, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                        max_unique_tokens=None, group=None, random_seed=None, ax=None):
        """N_opt and D_opt vs compute with bands; see :func:`bayescale.analysis.plots.plot_allocation`."""
        return plots.plot_allocation(self, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                                     max_unique_tokens=max_unique_tokens, group=group, random_seed=random_seed,
                                     ax=ax)

    @renamed(budgets="budget")
    def plot_isoflop(self, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                     n_points=60, group=None, random_seed=None, ax=None):
        """IsoFLOP curves (loss vs N at fixed C) with bands; see :func:`bayescale.analysis.plots.plot_isoflop`."""
        return plots.plot_isoflop(self, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                                  n_points=n_points, group=group, random_seed=random_seed, ax=ax)

    def recommend_runs(self, candidates, *, quantity="n_opt", budget=None, target=None, prob=0.9, outcomes=100,
                       psis=True, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, columns=None, group=None,
                       random_seed=None, tokens_per_param_factor=nextrun.TOKENS_PER_PARAM_FACTOR):
        """Candidate runs ranked by expected interval shrinkage per FLOP; see :func:`bayescale.analysis.nextrun.recommend_runs`."""
        return nextrun.recommend_runs(self, candidates, quantity=quantity, budget=budget, target=target, prob=prob,
                                      outcomes=outcomes, psis=psis, flops_per_param_token=flops_per_param_token,
                                      columns=columns, group=group, random_seed=random_seed,
                                      tokens_per_param_factor=tokens_per_param_factor)

    def plot_recommendations(self, table, *, ax=None):
        """Shrinkage per FLOP over the (N, D) plane; see :func:`bayescale.analysis.nextrun.plot_recommendations`."""
        return nextrun.plot_recommendations(self, table, ax=ax)
