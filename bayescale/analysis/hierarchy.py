"""Groups of runs: pooling settings, per-group parameter draws, shrinkage tables and plots.

The pieces live in :mod:`bayescale.core.pooling` (settings), :mod:`bayescale.analysis.groups`
(draws, summaries, the forest plot) and :mod:`bayescale.core.simulate` (synthetic
grouped runs); this module gathers them.

Runs may carry a ``group`` label (data mixture, modality, model family ...).
Each parameter of the law is then, by choice:

``shared``
    one value for every group (the default);
``partial``
    one value per group, drawn from a population: on the sampler's internal
    scale ``z_g = z_pop + group_sd * offset_g``, centred or non-centred group by
    group as the data say (the sampler meets no funnel where the spread may be
    near 0; :mod:`bayescale.fitting.centring`). The parameter's prior becomes the
    prior of the population value ``<name>_pop``; ``<name>_group_sd`` (the
    spread between groups on that scale) gets a HalfNormal hyperprior;
``independent``
    one value per group, each with the parameter's prior and nothing shared.

The internal scale is the log for positive parameters (E, exponents ...) and,
for a coefficient such as A in A / N**alpha, the log of the term at the data's
centre, ``log(A / N0**alpha)`` (see :mod:`bayescale.fitting.model`). So ``group_sd``
of ``E`` is the spread of log E between groups, and a coefficient whose
exponent varies by group varies by group itself even when it is "shared"
(what is shared is the term's size at the data's centre).

Published parameters that vary have dims ``(chain, draw, group)`` in the
posterior. A group the fit has not seen (a new data mixture) is drawn from
the population: per posterior draw, fresh ``offset ~ Normal(0, 1)`` for every
partially pooled parameter (:func:`group_param_draws`).
"""

from __future__ import annotations

from .groups import group_labels, group_param_draws, group_summary, plot_groups, tidy_posterior
from ..core.pooling import (NEW_GROUP, POOLING_CHOICES, POP_SUFFIX, SD_SUFFIX, Pooling, default_group_sd_prior,
                            pop_name, sd_name)
from ..core.simulate import simulate_groups

__all__ = [
    "Pooling",
    "POOLING_CHOICES",
    "NEW_GROUP",
    "POP_SUFFIX",
    "SD_SUFFIX",
    "pop_name",
    "sd_name",
    "default_group_sd_prior",
    "tidy_posterior",
    "group_param_draws",
    "group_labels",
    "group_summary",
    "plot_groups",
    "simulate_groups",
]
