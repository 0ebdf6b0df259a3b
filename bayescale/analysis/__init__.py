"""Analyses of one fit: the results contract and what is computed from it.

Predictions, allocation and risk, plots, checks, group and contrast tables, the value of a next run,
rendering. Written against :class:`bayescale.analysis.contract.ScalingResult`, so they serve every fit
type; imports :mod:`bayescale.base`, :mod:`bayescale.core` and :mod:`bayescale.runs`.
"""
