"""Array core: laws and their formulas, priors, the form discrepancy, allocation arithmetic, simulation.

Plain functions of arrays; no run table, no fit. Imports only :mod:`bayescale.base`.
"""
