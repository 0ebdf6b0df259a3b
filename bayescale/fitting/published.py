"""Published scaling laws, ready to use as fits and as priors: :func:`published` and :func:`published_table`.

Each entry is a law fitted in a paper, with its reference (authors, year, arXiv id and the table or
equation the numbers come from), the range of runs it was fitted on, its uncertainty where the
paper publishes one (as parameter draws), and its headline allocation: N_opt and tokens per
parameter at the paper's budget, computed from the paper's own formula (:attr:`PublishedLaw.headline`;
the tests hold every entry to it within 1%).

An entry reads like a point fit (:mod:`bayescale.analysis.contract`): ``allocate``, ``predict``, ``risk``,
``budget_for`` and ``summary`` return the same tables as a fitted model's. An entry with draws is
like a bootstrapped point fit (``draws_kind = "bootstrap"``): its tables carry percentile intervals.
An entry without published uncertainty is a point estimate: its intervals collapse onto the
estimate, and no run-to-run scatter is published, so a new run's band is the curve's.

Two kinds of entry:

* a **loss law** (``hoffmann2022``, ``besiroglu2024``, ``muennighoff2023``): the law of
  :mod:`bayescale.core.laws` with the published parameters. Its allocation is the law's own optimum
  (:func:`bayescale.core.allocation.optimal_allocation`), and :meth:`PublishedLaw.as_priors` turns it
  into priors for :class:`~bayescale.ScalingModel`;
* an **allocation rule** (``deepseek2024``, ``llama3_2024``, ``kaplan2020``): a published power
  law of compute for N_opt (or D_opt, or DeepSeek's non-embedding FLOPs per token M_opt = k N_opt),
  the other quantity following from ``C = k N D``. Kaplan et al. also published a loss law
  L(N, D); the entry predicts with it and evaluates the loss at the rule's plan, but its
  allocation is the published C_min rule, not the optimum of L(N, D) at fixed 6ND (their C_min
  analysis and their L(N, D) fit are separate).

Entries left out: Porian et al. 2024 (arXiv:2406.19146) publish per-configuration exponents, not
one headline coefficient the package could verify; Hoffmann et al.'s Approaches 1 and 2 publish
exponents with no coefficients in the text.
"""

from __future__ import annotations

import warnings
from importlib.resources import files

import numpy as np
import pandas as pd

from ..runs import datasets
from ..analysis.contract import interval_label
from ..base.errors import ExtrapolationWarning, SpecError
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_prob
from .publishedlaw import Headline, PowerAllocation, PublishedLaw
from ..base.units import PF_DAY

__all__ = ["PublishedLaw", "PowerAllocation", "published", "published_table", "available_published"]


def _read_csv(name) -> pd.DataFrame:
    with files("bayescale.runs.datasets").joinpath(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


# ---------------------------------------------------------------------------- entries
def _hoffmann2022():
    return PublishedLaw(
        "hoffmann2022", short="Hoffmann et al. 2022", law="chinchilla",
        reference="Hoffmann, Borgeaud, Mensch et al. 2022, Training Compute-Optimal Large Language Models, "
                  "arXiv:2203.15556",
        source="Approach 3, Section 3.3 and Appendix D.2 (eq. 10): E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, "
               "beta = 0.28; the optimum is their eq. 4",
        params=dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
        data_range={"N": (7e7, 1.6e10), "D": (5e9, 5e11)},
        headline=Headline(5.76e23, 3.219e10, 92.65,
                          "eq. 4, N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)), "
                          "at Gopher's budget 5.76e23 FLOP (the budget of their Table 3)"),
        notes="Point estimate: the paper's bootstrap intervals cover the exponents a and b only "
              "(Table 2), not the parameters. The rounded exponents imply about 93 tokens per parameter at "
              "5.76e23, not the ~20 of Approaches 1 and 2 (Besiroglu et al. 2024 trace this to the fit).",
    )


def _besiroglu2024():
    raw = _read_csv("besiroglu2024_bootstrap.csv").set_index("resample")
    params = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
    # The replication's own optimum on the same runs (Hoffmann's procedure; bayescale.Approach3): the bootstrap
    # resamples are refits started there, so they are recentred on Table 1 (ratio for E, A, B; difference for the
    # exponents), keeping their spread and correlations.
    replication = dict(E=1.8172181, A=477.82586, B=2143.4174, alpha=0.3473105, beta=0.36717243)
    draws = raw.copy()
    for k in ("E", "A", "B"):
        draws[k] = raw[k] * params[k] / replication[k]
    for k in ("alpha", "beta"):
        draws[k] = raw[k] + params[k] - replication[k]
    runs = datasets.load_chinchilla(drop_outliers=True)[["N", "D", "C", "loss"]]
    return PublishedLaw(
        "besiroglu2024", short="Besiroglu et al. 2024", law="chinchilla",
        reference="Besiroglu, Erdil, Barnett and You 2024, Chinchilla Scaling: A replication attempt, "
                  "arXiv:2404.10102",
        source="Table 1: E = 1.8172 (0.03), A = 482.01 (124.58), B = 2085.43 (1293.23), alpha = 0.3478 (0.02), "
               "beta = 0.3658 (0.02), standard errors from 4000 bootstrap resamples; a = beta/(alpha+beta) "
               "= 0.5126",
        params=params, draws=draws, runs=runs,
        data_range={"N": (float(runs["N"].min()), float(runs["N"].max())),
                    "D": (float(runs["D"].min()), float(runs["D"].max())),
                    "C": (float(runs["C"].min()), float(runs["C"].max()))},
        headline=Headline(5.88e23, 7.302e10, 18.38,
                          "the Chinchilla optimum (Hoffmann et al. eq. 4) with Table 1's parameters at Chinchilla's "
                          "budget 6 x 70e9 x 1.4e12 = 5.88e23 FLOP",
                          printed="about 20 tokens per parameter"),
        notes="Draws: 1000 bootstrap resamples of the 240 digitised Chinchilla runs (bayescale.runs.datasets), each "
              "refitted by Hoffmann's procedure (bayescale.Approach3, Huber delta 1e-3, L-BFGS-B), recentred on "
              "Table 1. Their sds (E 0.027, A 126, B 1386, alpha 0.016, beta 0.021; a 0.020) match Table 1's "
              "standard errors (0.03, 124.58, 1293.23, 0.02, 0.02).",
    )


def _muennighoff2023():
    runs = datasets.load_datablations()
    runs = runs[~runs["misparsed"]]
    return PublishedLaw(
        "muennighoff2023", short="Muennighoff et al. 2023", law="data_constrained",
        reference="Muennighoff, Rush, Barak et al. 2023, Scaling Data-Constrained Language Models, "
                  "arXiv:2305.16264",
        source="Section 3 and Appendix (fitted on their runs, huggingface/datablations utils/parametric_fit.ipynb): "
               "E = 1.870, A = 520.8, B = 1487.7, alpha = beta = 0.3527, R_D* = 15.39, R_N* = 5.31",
        params=dict(E=1.870, A=520.8, B=1487.7, alpha=0.3527, beta=0.3527, R_D=15.39, R_N=5.31),
        runs=runs[["N", "D", "U", "loss"]],
        data_range={"N": (float(runs["N"].min()), float(runs["N"].max())),
                    "D": (float(runs["D"].min()), float(runs["D"].max())),
                    "U": (float(runs["U"].min()), float(runs["U"].max()))},
        headline=Headline(5.88e23, 7.070e10, 19.61,
                          "fresh data (D = U): the Chinchilla optimum with their refit, alpha = beta, so D/N = "
                          "(B/A)^(1/alpha) at every budget; at 5.88e23 FLOP"),
        notes="Point estimate. With fresh data the law is their Chinchilla refit; allocate(..., "
              "max_unique_tokens=U) gives the data-constrained optimum (repeated epochs, excess parameters).",
    )


def _kaplan2020():
    return PublishedLaw(
        "kaplan2020", short="Kaplan et al. 2020", law="kaplan",
        reference="Kaplan, McCandlish, Henighan et al. 2020, Scaling Laws for Neural Language Models, "
                  "arXiv:2001.08361",
        source="L(N, D): eq. 1.5 with Table 2 (alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13, D_c = 1.8e13); "
               "allocation: N_opt = 1.3e9 C_min^0.73, C_min in PF-days (Figure 14, eq. 6.1)",
        params=dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103),
        rule=PowerAllocation("N", 1.3e9, 0.73, unit=PF_DAY),
        data_range={"N": (768.0, 1.5e9), "D": (2.2e7, 2.3e10)},
        headline=Headline(PF_DAY, 1.3e9, 8.521,
                          "N_opt = 1.3e9 (C / 1 PF-day)^0.73 at C = 1 PF-day = 8.64e19 FLOP; D = C / (6 N)",
                          printed="N_opt = 1.3e9 at 1 PF-day"),
        notes="N counts non-embedding parameters. The allocation is the published C_min rule; D = C / (6 N) "
              "(their C = 6 N B S). L(N, D) has no irreducible term; the loss columns are L(N, D) at the "
              "rule's plan.",
    )


def _deepseek2024():
    return PublishedLaw(
        "deepseek2024", short="DeepSeek-AI 2024",
        reference="DeepSeek-AI (Bi, Chen, Chen et al.) 2024, DeepSeek LLM: Scaling Open-Source Language Models "
                  "with Longtermism, arXiv:2401.02954",
        source="eq. 4: M_opt = 0.1715 C^0.5243, D_opt = 5.8316 C^0.4757, M = non-embedding FLOPs per token, "
               "C = M D",
        rule=PowerAllocation("M", 0.1715, 0.5243),
        data_range={"C": (1e17, 3e20)},
        headline=Headline(3e20, 1.557e9, 20.63,
                          "M_opt = 0.1715 C^0.5243 at 3e20 FLOP (the largest budget of their IsoFLOP fits), "
                          "N = M / 6, D = C / M"),
        notes="N here is M / 6, the non-embedding FLOPs per token counted as parameters (M = 6 N1 + attention "
              "FLOPs in their accounting), so C = M D = 6 N D; D = C / M agrees with their D_opt formula to 0.01%.",
    )


def _llama3_2024():
    return PublishedLaw(
        "llama3_2024", short="Llama Team 2024",
        reference="Llama Team, AI @ Meta (Grattafiori et al.) 2024, The Llama 3 Herd of Models, arXiv:2407.21783",
        source="Section 3.2.1, Figures 2-3: optimal training tokens N*(C) = A C^alpha, (alpha, A) = (0.53, 0.29)",
        rule=PowerAllocation("D", 0.29, 0.53),
        data_range={"C": (6e18, 1e22), "N": (4e7, 1.6e10)},
        headline=Headline(3.8e25, 6.053e11, 17.29,
                          "D_opt = 0.29 C^0.53 at their flagship budget 3.8e25 FLOP; N = C / (6 D)",
                          printed="402B parameters on 16.55T tokens (41 tokens per parameter)"),
        notes="The paper's printed 402B / 16.55T at 3.8e25 is not what its rounded coefficients give "
              "(1.05e13 tokens, 605B parameters): a change of 0.008 in alpha moves D by 37% at that budget. "
              "The entry uses the published coefficients.",
    )


_ENTRIES = {
    "hoffmann2022": _hoffmann2022,
    "besiroglu2024": _besiroglu2024,
    "kaplan2020": _kaplan2020,
    "muennighoff2023": _muennighoff2023,
    "deepseek2024": _deepseek2024,
    "llama3_2024": _llama3_2024,
}


def available_published() -> list:
    """Names of the catalogued laws.

    Examples
    --------
    >>> available_published()[:2]
    ['besiroglu2024', 'deepseek2024']
    """
    return sorted(_ENTRIES)


def published(name) -> PublishedLaw:
    """A published scaling law by name, usable like a fit and as priors.

    Parameters
    ----------
    name : str
        One of :func:`available_published`: ``hoffmann2022``, ``besiroglu2024``,
        ``kaplan2020``, ``muennighoff2023``, ``deepseek2024``, ``llama3_2024``.

    Returns
    -------
    PublishedLaw

    Examples
    --------
    >>> import bayescale as bs
    >>> law = bs.published("besiroglu2024")
    >>> table = law.allocate(1e24)
    >>> table.attrs["interval"]
    'bootstrap percentile'
    >>> bool(table["N_lower"].iloc[0] < table["N_median"].iloc[0] < table["N_upper"].iloc[0])
    True
    """
    if not isinstance(name, str) or name not in _ENTRIES:
        raise SpecError(f"unknown published law {name!r}; valid names: {', '.join(available_published())}")
    return _ENTRIES[name]()


def published_table(budget=1e24, prob=0.9, *, names=None, ci_kind="eti",
                    flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> pd.DataFrame:
    """Every catalogued law's answer at a budget, side by side.

    Parameters
    ----------
    budget : float, default 1e24
        Compute in FLOPs.
    prob : float, default 0.9
        Probability of the intervals (entries with draws).
    names : sequence of str, optional
        Entries to compare; default all.
    ci_kind : {"eti", "hdi"}, default "eti"
    flops_per_param_token : float, default 6

    Returns
    -------
    DataFrame
        One row per entry (index ``law``): ``reference``, ``interval`` (``bootstrap
        percentile`` or ``point estimate``), ``N_*``, ``D_*``, ``tokens_per_param_*``
        (median, lower, upper) and ``loss_*`` (NaN where the entry has no loss law), and
        ``beyond`` (decades of the plan beyond the entry's fitted range). The
        extrapolation warnings of the single entries are not repeated: ``beyond`` holds
        them.

    Examples
    --------
    >>> import bayescale as bs
    >>> t = bs.published_table(1e24)
    >>> t.loc["hoffmann2022", "interval"], len(t)
    ('point estimate', 6)
    """
    check_prob(prob)
    names = available_published() if names is None else list(names)
    rows = []
    for name in names:
        entry = published(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            row = entry.allocate(budget, prob, ci_kind=ci_kind, flops_per_param_token=flops_per_param_token)
        keep = [f"{q}_{s}" for q in ("N", "D", "tokens_per_param", "loss") for s in ("median", "lower", "upper")]
        for col in keep:
            if col not in row:
                row[col] = np.nan
        row = row[["C"] + keep + ["beyond"]].copy()
        row.insert(0, "interval", row.attrs.get("interval", interval_label(entry.draws_kind)))
        row.insert(0, "reference", entry.short)
        row.insert(0, "law", name)
        rows.append(row)
    table = pd.concat(rows, ignore_index=True).set_index("law")
    table.attrs.update(prob=prob, budget=check_budgets(budget).tolist(),
                       flops_per_param_token=float(flops_per_param_token))
    return table
