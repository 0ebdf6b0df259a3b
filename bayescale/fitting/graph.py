"""The PyMC graph behind a :class:`ScalingModel`, built once per model structure.

Everything that depends on the data (inputs, observed log loss, centring constants and prior
hyperparameters) enters the graph as ``pm.Data``: a graph is built once per *structure* (law, likelihood,
prior families, pooling, number of groups) and reused for every later fit in the process, with new data
swapped in (:func:`data_values`). Laws with a level form are sampled in it (:func:`level_form`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runs.data import RUN_SD
from ..core.laws import PYTENSOR
from ..core.priors import LogNormal
from ..core.pooling import GROUP_NOISE, level_coordinates, level_terms, pooled_in_level_form, pop_name, sd_name
from ..runs.undertuned import RATE, SCALE, flags, pymc_likelihood, pymc_run_term, run_flags
from .modelpriors import priors_for

__all__ = ["Graph", "graph_for", "build_model", "pymc_model", "data_values", "level_form"]


@dataclass
class Graph:
    """A compiled model structure, reusable across data sets."""

    pymc_model: object
    published: tuple
    n_groups: int = 1
    nutpie_model: object = None
    nutpie_source: str = ""
    _logp_grad: object = None
    n_offsets: int = 0  # per-run offsets (within_run="offset"); 0 without
    adaptation: str = "low_rank"  # nutpie's mass-matrix adaptation for this structure (see adaptation())

    @property
    def logp_grad(self):
        """PyTensor function of the value variables: ``[logp, *gradients]``, compiled on first use."""
        if self._logp_grad is None:
            import pytensor

            m = self.pymc_model
            logp = m.logp(jacobian=True)
            grads = pytensor.grad(logp, m.value_vars)
            self._logp_grad = pytensor.function(m.value_vars, [logp, *grads], on_unused_input="ignore")
        return self._logp_grad

    def flat_logp_grad(self):
        """``f(x) -> (logp, gradient)`` on the raveled unconstrained point, from the PyTensor function."""
        from pymc.logprob.utils import ParameterValueError

        m = self.pymc_model
        start = m.initial_point()
        shapes = [np.shape(start[v.name]) for v in m.value_vars]
        sizes = [int(np.prod(s)) for s in shapes]

        def f(x):
            parts, i = [], 0
            for shape, size in zip(shapes, sizes):
                parts.append(x[i:i + size].reshape(shape))
                i += size
            try:
                out = self.logp_grad(*parts)
            except ParameterValueError:  # a trial point outside the support (e.g. nu underflowed to 0)
                return float("nan"), np.full(x.size, np.nan)
            return float(out[0]), np.concatenate([np.ravel(g) for g in out[1:]])

        return f


_CACHE: dict = {}


def _key(smodel, priors, n_groups=1, n_offsets=0):
    # The number of groups sizes free variables (nutpie fixes the dimension at compile time), so it is
    # part of the structure, as is the number of per-run offsets; every other data-dependent value is pm.Data.
    pooling = tuple((n, smodel.pooling_of(n)) for n in smodel.law.param_names)
    return (smodel.law.name, smodel.law.function, smodel.law.parameters, smodel.likelihood,
            tuple((n, type(p).__name__) for n, p in priors.items()), pooling,
            int(n_groups) if smodel.hierarchical else 1, ("undertuned", smodel.undertuned), int(n_offsets))


def free_offsets(smodel, n_offsets) -> int:
    """Free per-run offsets of the graph: none with Normal noise (integrated out in closed form), else one per run."""
    return 0 if smodel.likelihood == "normal" else int(n_offsets)


def graph_for(smodel, priors, n_groups=1, n_offsets=0) -> Graph:
    """Return the cached :class:`Graph` for this model structure, building it once."""
    key = _key(smodel, priors, n_groups, free_offsets(smodel, n_offsets))
    if key not in _CACHE:
        _CACHE[key] = _build(smodel, priors, n_groups, n_offsets)
    return _CACHE[key]


def _scaled(smodel):
    """``{param: (input, exponent)}`` for the coefficients and scales the model centres."""
    return {p.name: p.scales_with for p in smodel.law.parameters if p.scales_with is not None}


def _build(smodel, priors, n_groups=1, n_offsets=0) -> Graph:
    m = pymc_model(smodel, priors, n_groups, n_offsets=n_offsets)
    published = tuple(smodel.published_names) + ((RUN_SD,) if n_offsets else ())
    return Graph(m, published, int(n_groups) if smodel.hierarchical else 1,
                 n_offsets=free_offsets(smodel, n_offsets), adaptation=adaptation(smodel, n_groups))


def build_model(smodel, runs, *, level=False):
    """A new ``pm.Model`` of `smodel` with the data of `runs` set (not the cached graph; yours to change).

    See :meth:`bayescale.ScalingModel.build`.
    """
    scale, n_offsets, priors = priors_for(smodel, runs)
    m = pymc_model(smodel, priors, len(runs.groups or ()) or 1, level=level, n_offsets=n_offsets)
    for name, value in data_values(smodel, runs, priors, scale).items():
        m[name].set_value(value)
    return m


def pymc_model(smodel, priors, n_groups=1, level=True, n_offsets=0):
    """The PyMC model of `smodel` with placeholder data (``level``: sample in level form where it applies).

    `n_offsets` > 0 (the number of runs of checkpoint data) adds the within-run term: integrated out with
    Normal noise (:func:`within_run_marginal`), per-run offsets otherwise (:func:`within_run_offsets`).
    """
    import pymc as pm

    law = smodel.law
    bases = sorted(set(law.scaled_inputs.values()))
    G = int(n_groups)
    with pm.Model() as m:
        inputs = {k: pm.Data(f"input_{k}", np.ones(2)) for k in law.inputs}
        observed = pm.Data("observed_log_loss", np.zeros(2))
        group = pm.Data("group_index", np.zeros(2, dtype="int32")) if smodel.hierarchical else None
        log_centre = {b: pm.Data(f"log_centre_{b}", 0.0) for b in bases}
        hyper = {
            name: {h: pm.Data(f"prior_{name}_{h}", float(v)) for h, v in prior.hyper.items()}
            for name, prior in priors.items()
        }

        # values: the law's parameters on the centred inputs, scalars or one per group.
        # pops: population values of exponents, for the coefficients' prior shift.
        values, pops = {}, {}
        terms = level_form(smodel) if level else None
        if terms is not None and smodel.hierarchical:
            values = pops = _pooled_level_form(smodel, terms, priors, hyper, log_centre, G)
        elif terms is not None:
            values = pops = _level_form(smodel, terms, priors, hyper, log_centre)
        _plain_params(smodel, priors, hyper, values, pops, pooled_noise=terms is not None and smodel.hierarchical,
                      n_groups=G)
        _scaled_params(smodel, priors, hyper, log_centre, values, pops, G)
        if group is not None:
            values = {k: (v[group] if getattr(v, "ndim", 0) == 1 else v) for k, v in values.items()}
        mu = law.log_loss(inputs, values, PYTENSOR)
        _likelihood(smodel, priors, hyper, values, mu, observed, n_offsets)
    return m


def _deviation(name, mu_pop, priors, hyper, n_groups):
    """Group deviations z_g - mu_pop ~ Normal(0, sd), partially non-centred.

    offset_g ~ Normal(w_g mu_pop, sd**w_g) and z_g = mu_pop + sd**(1 - w_g) (offset_g - w_g mu_pop):
    w_g = 0 is the non-centred form (offset ~ Normal(0, 1)), w_g = 1 the centred one; the model is the
    same for every w (Papaspiliopoulos, Roberts & Skold 2007). w is data, chosen per fit
    (see :func:`bayescale.fitting.centring.choose_centring`): centred where the runs pin a group down, non-centred where
    they do not.
    """
    import pymc as pm

    sd = priors[sd_name(name)].pymc(sd_name(name), hyper[sd_name(name)])
    w = pm.Data(f"{name}__centring", np.zeros(n_groups))
    offset = pm.Normal(f"{name}__offset", mu=w * mu_pop, sigma=sd ** w, shape=n_groups)
    return sd ** (1.0 - w) * (offset - w * mu_pop)


def _plain_params(smodel, priors, hyper, values, pops, pooled_noise, n_groups) -> None:
    """The parameters sampled on their own scale (not already in `values`), shared, independent or partial."""
    import pymc as pm
    import pytensor.tensor as pt

    scaled = _scaled(smodel)
    for name in smodel.param_names:
        if name in scaled or name in values:
            continue
        choice = smodel.pooling_of(name) if name in smodel.law.param_names else "shared"
        if name == GROUP_NOISE and pooled_noise:
            choice = "partial"  # the groups' noise scales, from a population (pooling.pooled_in_level_form)
        if choice == "shared":
            values[name] = pops[name] = priors[name].pymc(name, hyper[name])
        elif choice == "independent":
            values[name] = priors[name].pymc(name, hyper[name], shape=n_groups)
            pops[name] = pt.exp(pt.mean(pt.log(values[name])))
        else:
            pops[name] = priors[name].pymc(pop_name(name), hyper[name])
            log_pop = pt.log(pops[name])
            values[name] = pm.Deterministic(name, pt.exp(log_pop + _deviation(name, log_pop, priors, hyper,
                                                                               n_groups)))


def _scaled_params(smodel, priors, hyper, log_centre, values, pops, n_groups) -> None:
    """The coefficients sampled on the centred inputs (not already in `values`), with their published values."""
    import pymc as pm
    import pytensor.tensor as pt

    law = smodel.law
    for name, (inp, expo) in _scaled(smodel).items():
        if name in values:
            continue
        k = values[expo] if isinstance(expo, str) else float(expo)
        k_pop = pops[expo] if isinstance(expo, str) else float(expo)
        log_c = log_centre[law.scaled_inputs[inp]]
        shift = pm.Data(f"prior_{name}_shift", 0.0)
        mu, sigma = hyper[name]["mu"], hyper[name]["sigma"]
        choice = smodel.pooling_of(name)
        if choice == "shared":
            centred = pm.Normal(f"{name}__centred", mu=mu + k_pop * shift, sigma=sigma)
        elif choice == "independent":
            centred = pm.Normal(f"{name}__centred", mu=mu + k * shift, sigma=sigma, shape=n_groups)
        else:
            centred_pop = pm.Normal(f"{name}__centred_pop", mu=mu + k_pop * shift, sigma=sigma)
            pm.Deterministic(pop_name(name), pt.exp(centred_pop + k_pop * log_c))
            centred = centred_pop + _deviation(name, centred_pop, priors, hyper, n_groups)
        values[name] = pt.exp(centred)
        pm.Deterministic(name, pt.exp(centred + k * log_c))


def _likelihood(smodel, priors, hyper, values, mu, observed, n_offsets) -> None:
    """The observed log losses around `mu`: with the within-run term for checkpoint data, the undertuned excess,
    Student-t or Normal noise."""
    import pymc as pm

    if n_offsets and smodel.likelihood == "normal":  # checkpoint data: the within-run term, integrated out
        excess = (values[SCALE], values[RATE]) if smodel.undertuned else None
        within_run_marginal(mu, values["sigma"], observed, priors, hyper, excess)
        return
    if n_offsets:
        mu = mu + within_run_offsets(priors, hyper, n_offsets)
    if smodel.undertuned:
        _undertuned_likelihood(smodel, values, mu, observed)
    elif smodel.likelihood == "student_t":
        pm.StudentT("log_loss", nu=values["nu"], mu=mu, sigma=values["sigma"], observed=observed,
                    shape=observed.shape)
    else:
        pm.Normal("log_loss", mu=mu, sigma=values["sigma"], observed=observed, shape=observed.shape)


def within_run_offsets(priors, hyper, n_offsets):
    """The per-run offset of each row, ``u_run(i)``, inside a ``pm.Model`` (within_run="offset").

    ``u_r ~ Normal(0, run_sd)``, one free variable per run identifier (so `n_offsets` is part of the
    graph's structure), partially non-centred as the group deviations are: ``raw_r ~ Normal(0, run_sd**w_r)``
    and ``u_r = run_sd**(1 - w_r) raw_r``, the same model for every weight ``w_r`` (data,
    ``run_offset__centring``, set by :func:`data_values`): centred (w = 1) for a run of several rows,
    whose rows pin its offset down, non-centred (w = 0) for a run of one row. ``run_sd`` has its own prior
    and is published. Rows find their offset through ``pm.Data("run_index")``. The offsets add to the law's
    log loss, so they work the same in level form.
    """
    import pymc as pm

    run = pm.Data("run_index", np.zeros(2, dtype="int32"))
    w = pm.Data("run_offset__centring", np.zeros(int(n_offsets)))
    run_sd = priors[RUN_SD].pymc(RUN_SD, hyper[RUN_SD])
    raw = pm.Normal("run_offset", mu=0.0, sigma=run_sd ** w, shape=int(n_offsets))
    return (run_sd ** (1.0 - w) * raw)[run]


def within_run_marginal(mu, sigma, observed, priors, hyper, excess=None):
    """Normal noise with per-run offsets, the offsets integrated out: ``pm.Potential("log_loss")``.

    The rows of run r have log loss ``mu + u_r + e_i``, ``u_r ~ Normal(0, run_sd)``, ``e_i ~ Normal(0, sigma)``:
    jointly Normal with covariance ``sigma**2 I + run_sd**2 11'``, whose log density needs only each run's
    number of rows n_r and sum of residuals S_r (Sherman-Morrison):
    ``-1/2 [n log 2 pi + sum_r ((n_r - 1) log s2 + log(s2 + n_r t2)) + sum e**2 / s2
    - t2 sum_r S_r**2 / (s2 (s2 + n_r t2))]``. No free offsets, so the number of runs is data here
    (``pm.Data("run_rows")``), not structure.

    `excess` ``(excess_scale, undertuned_rate)``: possibly undertuned runs, a whole run's rows sharing one
    excess; each run's density becomes the mixture of :mod:`bayescale.runs.undertuned` (its term
    :func:`bayescale.runs.undertuned.pymc_run_term` of the run's mean residual), with the runs' flags as data
    (``pm.Data("undertuned_run_flag")``, one per run).
    """
    import pymc as pm
    import pytensor.tensor as pt

    run = pm.Data("run_index", np.zeros(2, dtype="int32"))
    rows = pm.Data("run_rows", np.ones(2))
    run_sd = priors[RUN_SD].pymc(RUN_SD, hyper[RUN_SD])
    e = observed - mu
    s2, t2 = sigma ** 2, run_sd ** 2
    sums = pt.inc_subtensor(pt.zeros_like(rows)[run], e)
    logp = -0.5 * (e.shape[0] * np.log(2 * np.pi) + pt.sum((rows - 1) * pt.log(s2) + pt.log(s2 + rows * t2))
                   + pt.sum(e ** 2) / s2 - t2 * pt.sum(sums ** 2 / (s2 + rows * t2)) / s2)
    if excess is not None:
        flagged = pm.Data("undertuned_run_flag", np.zeros(2))
        logp = logp + pt.sum(pymc_run_term(sums / rows, t2 + s2 / rows, excess[0], excess[1], flagged))
    pm.Potential("log_loss", logp)
def _undertuned_likelihood(smodel, values, mu, observed):
    """The likelihood with possibly undertuned runs: a mixture with a one-sided excess (bayescale.runs.undertuned).

    Its parameters ``undertuned_rate`` and ``excess_scale`` are among the model's shared parameters
    (``values``); the flags of the rows are data.
    """
    import pymc as pm

    flagged = pm.Data("undertuned_flag", np.zeros(2))
    nu = values["nu"] if smodel.likelihood == "student_t" else None
    pymc_likelihood("log_loss", mu, observed, values["sigma"], values[SCALE], values[RATE], flagged, nu)


def level_form(smodel):
    """The terms ``((coefficient, exponent), ...)`` when the model samples in level form, else None.

    Level form applies to laws with one irreducible parameter and one or two coefficients, each
    scaling with its own exponent (Chinchilla, the single-variable power laws, the data-constrained
    law; :func:`bayescale.core.pooling.level_terms`), when no parameter varies by group or when every law
    parameter is partially pooled (the groups then vary in level coordinates,
    :func:`_pooled_level_form`).
    """
    if smodel.hierarchical and not pooled_in_level_form(smodel.law, smodel.pooling):
        return None
    return level_terms(smodel.law)


def _level_form(smodel, terms, priors, hyper, log_centre):
    """Sample the law at the data's centre instead of (E, coefficients, exponents).

    With the inputs centred, the loss at the centre is ``L0 = E + a_1 + a_2`` (a_i the centred
    coefficients) and the local log-log slope of term i there is ``k_i = alpha_i a_i / L0``. Both are
    pinned down by any ladder, however short, while E, a_i and alpha_i trade off along a curved ridge
    when log N spans little. The sampler moves in

        log L0, log k_i, logit f (f = E / L0), logit w (w = a_1 / (a_1 + a_2), two terms only)

    and the model maps back: E = f L0, a_1 = (1 - f) w L0, a_2 = (1 - f)(1 - w) L0,
    alpha_i = k_i L0 / a_i. The map from these coordinates to (log E, log a_i, log alpha_i) has
    Jacobian determinant 1, so the priors, stated on the published parameters, enter as their
    densities on the log scale and the model is unchanged; only its geometry is.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = smodel.law
    e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
    log_level = pm.Flat("level__log", initval=1.0)
    share = pm.Flat(f"{e_name}__share", initval=0.0)  # logit f
    log_f, log_1mf = -pt.softplus(-share), -pt.softplus(share)
    if len(terms) == 2:
        weight = pm.Flat(f"{terms[0][0]}__weight", initval=0.0)  # logit w
        log_w = (-pt.softplus(-weight), -pt.softplus(weight))
    else:
        log_w = (pt.as_tensor_variable(0.0),)
    log_e = log_level + log_f
    values = {e_name: pm.Deterministic(e_name, pt.exp(log_e))}
    density = priors[e_name].dist(hyper[e_name])
    logp = pm.logp(density, values[e_name]) + log_e
    for (coef, expo), lw in zip(terms, log_w):
        log_a = log_level + log_1mf + lw
        log_k = pm.Flat(f"{expo}__slope_log", initval=-2.0)
        log_expo = log_k - log_1mf - lw
        values[expo] = pm.Deterministic(expo, pt.exp(log_expo))
        logp = logp + pm.logp(priors[expo].dist(hyper[expo]), values[expo]) + log_expo
        inp = law.parameter(coef).scales_with[0]
        log_c = log_centre[law.scaled_inputs[inp]]
        mu = hyper[coef]["mu"] + values[expo] * pm.Data(f"prior_{coef}_shift", 0.0)
        logp = logp + pm.logp(pm.Normal.dist(mu=mu, sigma=hyper[coef]["sigma"]), log_a)
        values[coef] = pt.exp(log_a)
        pm.Deterministic(coef, pt.exp(log_a + values[expo] * log_c))
    pm.Potential("level_form_prior", logp)
    return values


def _pooled_level_form(smodel, terms, priors, hyper, log_centre, n_groups):
    """Groups that vary in level coordinates, drawn from a population in the same coordinates.

    Each group g has its own level coordinates u_g (:func:`bayescale.core.pooling.level_coordinates`: log L0,
    logit f, logit w, log k_i, as in :func:`_level_form`), ``u_g = u_pop + sd * offset_g`` per coordinate,
    partially non-centred as :func:`pymc_model`'s group deviations are (weights ``<coordinate>__centring``,
    chosen per fit by :func:`bayescale.fitting.centring.choose_centring`): the level and the slopes, which any ladder
    pins down, end up centred; the shares, which a short ladder leaves open, towards non-centred. The groups' published
    parameters (E, A, alpha ... per group) follow from u_g; the population's (``E_pop``, ``A_pop`` ...)
    from u_pop, and the model's priors, stated on the published parameters, apply there (Jacobian 1 on
    the log scale, as in :func:`_level_form`). The spread of each coordinate between groups,
    ``<coordinate>_group_sd``, has the prior :func:`bayescale.core.pooling.default_level_sd_prior` unless set.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = smodel.law
    G = int(n_groups)
    e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
    coords = [c for c, _kind in level_coordinates(law)]
    pop = {"level": pm.Flat("level__log", initval=1.0), f"{e_name}_share": pm.Flat(f"{e_name}__share", initval=0.0)}
    if len(terms) == 2:
        pop[f"{terms[0][0]}_weight"] = pm.Flat(f"{terms[0][0]}__weight", initval=0.0)
    for _coef, expo in terms:
        pop[f"{expo}_slope"] = pm.Flat(f"{expo}__slope_log", initval=-2.0)
    group = {}
    for c in coords:
        sd = priors[sd_name(c)].pymc(sd_name(c), hyper[sd_name(c)])
        w = pm.Data(f"{c}__centring", np.zeros(G))
        offset = pm.Normal(f"{c}__offset", mu=w * pop[c], sigma=sd ** w, shape=G)
        group[c] = pop[c] + sd ** (1.0 - w) * (offset - w * pop[c])

    def published(u):
        """Log E, log centred coefficients and log exponents from level coordinates (PyTensor)."""
        share = u[f"{e_name}_share"]
        log_f, log_1mf = -pt.softplus(-share), -pt.softplus(share)
        if len(terms) == 2:
            weight = u[f"{terms[0][0]}_weight"]
            log_w = (-pt.softplus(-weight), -pt.softplus(weight))
        else:
            log_w = (0.0,)
        out = {e_name: u["level"] + log_f}
        for (coef, expo), lw in zip(terms, log_w):
            out[coef] = u["level"] + log_1mf + lw
            out[expo] = u[f"{expo}_slope"] - log_1mf - lw
        return out

    log_pop, log_group = published(pop), published(group)
    logp = pm.logp(priors[e_name].dist(hyper[e_name]), pt.exp(log_pop[e_name])) + log_pop[e_name]
    values = {e_name: pm.Deterministic(e_name, pt.exp(log_group[e_name]))}
    pm.Deterministic(pop_name(e_name), pt.exp(log_pop[e_name]))
    for coef, expo in terms:
        expo_pop = pt.exp(log_pop[expo])
        logp = logp + pm.logp(priors[expo].dist(hyper[expo]), expo_pop) + log_pop[expo]
        values[expo] = pm.Deterministic(expo, pt.exp(log_group[expo]))
        pm.Deterministic(pop_name(expo), expo_pop)
        inp = law.parameter(coef).scales_with[0]
        log_c = log_centre[law.scaled_inputs[inp]]
        mu = hyper[coef]["mu"] + expo_pop * pm.Data(f"prior_{coef}_shift", 0.0)
        logp = logp + pm.logp(pm.Normal.dist(mu=mu, sigma=hyper[coef]["sigma"]), log_pop[coef])
        values[coef] = pt.exp(log_group[coef])
        pm.Deterministic(coef, pt.exp(log_group[coef] + values[expo] * log_c))
        pm.Deterministic(pop_name(coef), pt.exp(log_pop[coef] + expo_pop * log_c))
    pm.Potential("level_form_prior", logp)
    return values


def data_values(smodel, runs, priors, scale) -> dict:
    """Values of every ``pm.Data`` node for these runs and resolved priors."""
    law = smodel.law
    raw = runs.inputs(law.inputs)
    out = {}
    for k in law.inputs:
        base = law.scaled_inputs.get(k)
        out[f"input_{k}"] = raw[k] / scale.centres[base] if base else raw[k]
    out["observed_log_loss"] = np.log(runs.loss)
    if RUN_SD in priors:
        out["run_index"] = runs.run_index.astype("int32")
        rows = np.bincount(runs.run_index).astype(float)
        if smodel.likelihood == "normal":
            out["run_rows"] = rows
        else:
            out["run_offset__centring"] = (rows > 1).astype(float)
    if smodel.undertuned and "run_rows" in out:  # checkpoint data: a whole run is undertuned or not

        out["undertuned_run_flag"] = run_flags(runs.frame, runs.run_index).astype(float)
    elif smodel.undertuned:
        out["undertuned_flag"] = flags(runs.frame).astype(float)
    if smodel.hierarchical:
        out["group_index"] = runs.group_index.astype("int32")
        for key, _sd, _mu in centring_targets(smodel):
            out[f"{key}__centring"] = np.zeros(len(runs.groups))  # non-centred until choose_centring
    for b, c in scale.centres.items():
        out[f"log_centre_{b}"] = np.float64(np.log(c))
    for name, prior in priors.items():
        for h, v in prior.hyper.items():
            out[f"prior_{name}_{h}"] = np.float64(v)
    for name, (inp, _expo) in _scaled(smodel).items():
        prior = priors[name]
        assert isinstance(prior, LogNormal)
        log_at = 0.0 if prior.at is None else np.log(prior.at)
        out[f"prior_{name}_shift"] = np.float64(log_at - np.log(scale.centres[law.scaled_inputs[inp]]))
    return out


def centring_targets(smodel) -> list:
    """``[(name, sd variable, (how, population variable)), ...]``: the partially pooled quantities of the graph.

    Each has free offsets ``<name>__offset`` and centring weights ``<name>__centring``; its population value
    on the internal scale is the free variable (``how`` "value") or the log of the published one ("log").
    With the groups varying in level coordinates these are the coordinates, otherwise the law's partially
    pooled parameters.
    """
    law = smodel.law
    if pooled_in_level_form(law, smodel.pooling):
        e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
        out = []
        for c, kind in level_coordinates(law):
            var = {"level": "level__log", "share": f"{e_name}__share", "weight": c.replace("_weight", "__weight"),
                   "slope": c.replace("_slope", "__slope_log")}[kind]
            out.append((c, sd_name(c), ("value", var)))
        return out + [(GROUP_NOISE, sd_name(GROUP_NOISE), ("log", pop_name(GROUP_NOISE)))]
    out = []
    for name in law.param_names:
        if smodel.pooling_of(name) != "partial":
            continue
        mu = ("value", f"{name}__centred_pop") if name in _scaled(smodel) else ("log", pop_name(name))
        out.append((name, sd_name(name), mu))
    return out


#: Fewer groups than this leave the spreads between groups loosely estimated: see :func:`adaptation`.
FEW_GROUPS = 8


def adaptation(smodel, n_groups) -> str:
    """nutpie's mass-matrix adaptation: diagonal for few groups in level coordinates, low-rank otherwise.

    With few groups the spreads' posteriors are wide and the groups' coordinates partly centred; there the
    low-rank adaptation mixed poorly. Measured on three 30-run Porian ladders (4 x 1000 draws, first
    attempt): low-rank 0-3 divergences, diagonal none at bulk ESS 900-1050; on 15 ladders low-rank sampled
    in 83 s (0 divergences, bulk ESS 1600), diagonal took 135 s.
    """
    few = pooled_in_level_form(smodel.law, smodel.pooling) and n_groups < FEW_GROUPS
    return "diag" if few else "low_rank"
