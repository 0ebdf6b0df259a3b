"""How each pooled group is sampled: centred where its runs pin it down, non-centred where they do not.

:func:`choose_centring` sets the weights ``<name>__centring`` of the graph's group deviations
(:func:`bayescale.fitting.graph.pymc_model`) from the curvature of the log density at the mode, averaged over the
posterior of the groups' spread (Gorinova, Moore & Hoffman 2020; Papaspiliopoulos, Roberts & Skold 2007).
"""

from __future__ import annotations

import numpy as np

from .graph import centring_targets

__all__ = ["choose_centring"]


def _constrained(graph, point, rv_name):
    """Value of free variable `rv_name` on its own scale at an unconstrained point."""
    m = graph.pymc_model
    rv = m[rv_name]
    value = point[m.rvs_to_values[rv].name]
    transform = m.rvs_to_transforms.get(rv)
    if transform is None:
        return np.asarray(value, dtype=float)
    if type(transform).__name__ == "LogTransform":
        return np.exp(value)
    return np.asarray(transform.backward(value, *rv.owner.inputs).eval(), dtype=float)


#: Draws of each spread's prior that weigh the centring of its groups (:func:`choose_centring`).
SPREAD_DRAWS = 4000


def choose_centring(graph, smodel, priors, values, point, vector, logp_grad, step=1e-4, rng=None):
    """Pick each group's centring weight for each pooled quantity from the data, and move the start point there.

    For one group and one pooled quantity ``z_g = mu + sd * offset_g``, with ``L_g`` the precision the
    group's own runs give ``z_g``, the weight that makes offset_g's posterior closest to independent of sd
    is ``w = sd^2 L_g / (1 + sd^2 L_g)`` (Gorinova, Moore & Hoffman 2020): 1 (centred) where the runs pin
    the group down, 0 (non-centred) where the population does. Two things make it a choice from the
    data rather than from one point:

    - ``L_g`` is the group's *marginal* precision: the Hessian block of all the group's offsets at the
      non-centred mode is inverted, so a quantity the runs leave open through a trade-off with another
      (the irreducible share against an exponent on a short ladder) is not taken as pinned down.
    - ``w`` is averaged over the posterior of sd, not taken at its mode: the groups' own estimates and
      their standard errors give sd's marginal likelihood, which weighs :data:`SPREAD_DRAWS` draws of its
      prior. Where the groups could all be alike (sd near 0, the neck of the funnel) the weight falls.

    Measured at defaults (4 x 1000 draws, first attempt, 2 cores), against the curvature at the
    conditional mode with the shares of few groups forced non-centred:

    ========================================  ==================================  ==================================
    runs                                      before                              after
    ========================================  ==================================  ==================================
    10 groups x 50, only E and A vary         3 attempts, 228 s                   24 s, 0-2 divergences, ESS 720-840
    3 simulated groups x 30, all differ       44-52 s, 250 leapfrog steps a draw  9 s, 42 steps, ESS 1400-1650
    3 Porian ladders x 30 (long, Kaplan)      9-10 s, ESS 960-1020                7 s, ESS 900-1050
    3 Porian ladders x 30 (mixed settings)    ESS 60-210, R-hat 1.02-1.04         ESS 90-250, R-hat 1.01-1.06
    Porian's 15 configurations (1745 runs)    0 divergences, ESS 1260             83 s, 0 divergences, ESS 1600
    ========================================  ==================================  ==================================
    """
    names = [v.name for v in graph.pymc_model.value_vars]
    sizes = [int(np.size(point[n])) for n in names]
    starts = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    targets = centring_targets(smodel)
    rng = np.random.default_rng(0) if rng is None else rng
    point = dict(point)
    n_groups = int(np.size(point[f"{targets[0][0]}__offset"]))
    index = np.array([[starts[f"{name}__offset"] + g for name, _sd, _mu in targets] for g in range(n_groups)])
    marginal = _offset_marginal_variances(vector, index, lambda x: logp_grad(x)[1], step)
    chosen = {}
    for k, (name, sd_var, (how, mu_var)) in enumerate(targets):
        offsets = np.asarray(point[f"{name}__offset"], dtype=float)
        sd = float(_constrained(graph, point, sd_var))
        mu = float(_constrained(graph, point, mu_var))
        mu = float(np.log(mu)) if how == "log" else mu
        precision = np.clip((1.0 / marginal[:, k] - 1.0) / sd**2, 0.0, None)  # L_g: h = 1 + sd^2 L_g
        w = _centring_weights(sd * offsets, sd, precision, priors[sd_var].sample(rng, SPREAD_DRAWS))
        chosen[name] = (w, w * mu + sd**w * offsets)  # the same z_g in the new parameterisation
    for name, (w, offsets) in chosen.items():
        values[f"{name}__centring"] = w
        graph.pymc_model[f"{name}__centring"].set_value(w)
        point[f"{name}__offset"] = offsets
    vector = np.concatenate([np.ravel(point[n]) for n in names])
    return point, vector


def _offset_marginal_variances(vector, index, grad, step):
    """Variance of each group's offsets at the mode, marginal over the group's other offsets.

    `index[g]` holds the positions of group g's offsets in `vector`; the Hessian block of each group comes
    from central differences of `grad`. Eigenvalues are kept at or above 1, the curvature of an offset's
    own Normal(0, 1) prior, so an unidentified direction reads as "the runs say nothing" rather than failing.
    """
    rows = {}
    with np.errstate(all="ignore"):
        for i in index.ravel():
            e = np.zeros(vector.size)
            e[i] = step
            rows[i] = -(grad(vector + e) - grad(vector - e)) / (2 * step)
    out = np.ones(index.shape)
    for g, idx in enumerate(index):
        block = np.array([rows[i][idx] for i in idx])
        block = 0.5 * (block + block.T)
        if not np.all(np.isfinite(block)):
            continue
        vals, vecs = np.linalg.eigh(block)
        out[g] = np.einsum("ij,j,ij->i", vecs, 1.0 / np.clip(vals, 1.0, None), vecs)
    return out


def _centring_weights(deviations, sd, precision, sd_draws):
    """Centring weight of each group, ``E[s^2 L_g / (1 + s^2 L_g)]`` over the posterior of the spread s.

    `deviations` are the groups' shrunk deviations from the population at the mode (spread `sd`),
    `precision` the precision L_g of each group's own runs, `sd_draws` draws of the spread's prior. The
    groups' own estimates (the shrinkage undone) with variances ``1 / L_g`` give the marginal likelihood
    of s, ``prod_g Normal(own_g; 0, s^2 + 1 / L_g)``, which weighs the draws. Groups whose runs say nothing
    (L_g = 0) get weight 0 and do not inform s.
    """
    shrink = sd**2 * precision / (1.0 + sd**2 * precision)
    known = shrink > 1e-6
    s = np.asarray(sd_draws, dtype=float)
    s = s[np.isfinite(s) & (s > 0)]
    if not known.any() or s.size == 0:
        return np.zeros_like(precision)
    own = deviations[known] / shrink[known]
    var = s[:, None] ** 2 + 1.0 / precision[known][None, :]
    loglik = -0.5 * np.sum(np.log(var) + own**2 / var, axis=1)
    weight = np.exp(loglik - loglik.max())
    weight /= weight.sum()
    t = s[:, None] ** 2 * precision[None, :]
    return weight @ (t / (1.0 + t))
