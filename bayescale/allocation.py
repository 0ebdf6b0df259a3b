"""Compute-optimal allocation: the array layer (NumPy, vectorised over draws).

Minimise L(N, D) subject to ``k N D = C`` (``k = 6`` FLOPs per parameter per
token by default). For the Chinchilla law the optimum is closed-form::

    N_opt = G (C/k)^(beta/(alpha+beta)),  D_opt = (C/k) / N_opt,
    G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["chinchilla_optimum"]


def chinchilla_optimum(params, budget, flops_per_param_token=6.0):
    """Closed-form compute-optimal N and D of the Chinchilla law.

    Parameters
    ----------
    params : mapping
        ``A``, ``B``, ``alpha``, ``beta`` as arrays (e.g. posterior draws) or floats.
    budget : float or array
        Compute C in FLOPs; broadcast against the parameters.
    flops_per_param_token : float, default 6

    Returns
    -------
    N_opt, D_opt : ndarray
        Computed in log space, so budgets from 1e15 to 1e30 stay finite.

    Examples
    --------
    >>> p = dict(A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> n, d = chinchilla_optimum(p, 5.76e23)
    >>> f"{float(n):.3g} {float(d):.3g}"
    '3.22e+10 2.98e+12'
    """
    a, b = np.asarray(params["alpha"], float), np.asarray(params["beta"], float)
    log_g = (np.log(a) + np.log(params["A"]) - np.log(b) - np.log(params["B"])) / (a + b)
    log_c = np.log(np.asarray(budget, float) / flops_per_param_token)
    log_n = log_g + (b / (a + b)) * log_c
    return np.exp(log_n), np.exp(log_c - log_n)
