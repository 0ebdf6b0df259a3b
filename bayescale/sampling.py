"""Building, caching and sampling the PyMC graph behind a :class:`ScalingModel`.

Everything that depends on the data — inputs, observed log loss, centring
constants and prior hyperparameters — enters the graph as ``pm.Data``. A graph
is therefore built and compiled once per model *structure* (law, likelihood,
prior families) and reused for every later fit in the process, with new data
swapped in. Chains start near the posterior mode, found by a multi-start
L-BFGS on the unconstrained log density: scaling-law posteriors have poor
local modes that NUTS warm-up does not always escape.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import BayescaleError
from .laws import PYTENSOR
from .priors import LogNormal

__all__ = ["run_sampler", "find_mode", "graph_for"]

N_STARTS = 8


@dataclass
class Graph:
    """A compiled model structure, reusable across data sets."""

    pymc_model: object
    published: tuple
    logp_grad: object
    nutpie_model: object = None


_CACHE: dict = {}


def _key(smodel, priors):
    return (smodel.law.name, smodel.law.function, smodel.likelihood,
            tuple((n, type(p).__name__) for n, p in priors.items()))


def graph_for(smodel, priors) -> Graph:
    """Return the cached :class:`Graph` for this model structure, building it once."""
    key = _key(smodel, priors)
    if key not in _CACHE:
        _CACHE[key] = _build(smodel, priors)
    return _CACHE[key]


def _scaled(smodel):
    """``{param: (input, exponent)}`` for the coefficients and scales the model centres."""
    return {p.name: p.scales_with for p in smodel.law.parameters if p.scales_with is not None}


def _build(smodel, priors) -> Graph:
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    law = smodel.law
    scaled = _scaled(smodel)
    bases = sorted(set(law.scaled_inputs.values()))
    with pm.Model() as m:
        inputs = {k: pm.Data(f"input_{k}", np.ones(2)) for k in law.inputs}
        observed = pm.Data("observed_log_loss", np.zeros(2))
        log_centre = {b: pm.Data(f"log_centre_{b}", 0.0) for b in bases}
        hyper = {
            name: {h: pm.Data(f"prior_{name}_{h}", float(v)) for h, v in prior.hyper.items()}
            for name, prior in priors.items()
        }
        values = {}
        for name in smodel.param_names:
            if name not in scaled:
                values[name] = priors[name].pymc(name, hyper[name])
        for name, (inp, expo) in scaled.items():
            k = values[expo] if isinstance(expo, str) else float(expo)
            shift = pm.Data(f"prior_{name}_shift", 0.0)
            centred = pm.Normal(f"{name}__centred", mu=hyper[name]["mu"] + k * shift, sigma=hyper[name]["sigma"])
            values[name] = pt.exp(centred)
            pm.Deterministic(name, pt.exp(centred + k * log_centre[law.scaled_inputs[inp]]))
        mu = law.log_loss(inputs, values, PYTENSOR)
        if smodel.likelihood == "student_t":
            pm.StudentT("log_loss", nu=values["nu"], mu=mu, sigma=values["sigma"], observed=observed,
                        shape=observed.shape)
        else:
            pm.Normal("log_loss", mu=mu, sigma=values["sigma"], observed=observed, shape=observed.shape)
    value_vars = m.value_vars
    logp = m.logp(jacobian=True)
    grads = pytensor.grad(logp, value_vars)
    fn = pytensor.function(value_vars, [logp, *grads], on_unused_input="ignore")
    return Graph(m, tuple(smodel.param_names), fn)


def data_values(smodel, runs, priors, scale) -> dict:
    """Values of every ``pm.Data`` node for these runs and resolved priors."""
    law = smodel.law
    raw = runs.inputs(law.inputs)
    out = {}
    for k in law.inputs:
        base = law.scaled_inputs.get(k)
        out[f"input_{k}"] = raw[k] / scale.centres[base] if base else raw[k]
    out["observed_log_loss"] = np.log(runs.loss)
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


def _set_data(graph: Graph, values: dict) -> None:
    m = graph.pymc_model
    for name, v in values.items():
        m[name].set_value(v)


def find_mode(graph: Graph, rng, n_starts=N_STARTS):
    """Multi-start L-BFGS for the mode of the unconstrained log density.

    Returns
    -------
    point : dict
        Value-variable name -> value at the best mode found.
    vector : ndarray
        The same, raveled in value-variable order.
    """
    from scipy.optimize import minimize

    m = graph.pymc_model
    names = [v.name for v in m.value_vars]
    start = m.initial_point()
    shapes = [np.shape(start[n]) for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    x0 = np.concatenate([np.ravel(start[n]) for n in names])

    def unravel(x):
        parts, i = [], 0
        for shape, size in zip(shapes, sizes):
            parts.append(x[i:i + size].reshape(shape))
            i += size
        return parts

    from pymc.logprob.utils import ParameterValueError

    def objective(x):
        try:
            out = graph.logp_grad(*unravel(x))
        except ParameterValueError:  # a trial point outside the support (e.g. nu underflowed to 0)
            return 1e300, np.zeros_like(x)
        val = -float(out[0])
        grad = -np.concatenate([np.ravel(g) for g in out[1:]])
        if not np.isfinite(val) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(x)
        return val, grad

    best = None
    for i in range(n_starts):
        x = x0 if i == 0 else x0 + rng.normal(0.0, 1.0, size=x0.size)
        with np.errstate(all="ignore"):
            res = minimize(objective, x, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None or best.fun >= 1e299:
        raise BayescaleError("could not find a finite starting point for the sampler; check the priors and data")
    return dict(zip(names, unravel(best.x))), best.x


def run_sampler(smodel, runs, settings):
    """Fit `smodel` to `runs`: resolve priors, swap data into the cached graph, sample."""
    from .fit import ScalingFit

    scale = smodel._data_scale(runs)
    priors = smodel._resolve(scale)
    t0 = time.perf_counter()
    graph = graph_for(smodel, priors)
    values = data_values(smodel, runs, priors, scale)
    _set_data(graph, values)
    rng = np.random.default_rng(settings.random_seed)
    point, vector = find_mode(graph, rng)
    t_mode = time.perf_counter()
    sampler = {"nutpie": _sample_nutpie, "pymc": _sample_pymc, "numpyro": _sample_numpyro}[settings.sampler]
    trace, t_sample = sampler(graph, values, point, vector, settings)
    timing = {"setup_seconds": t_mode - t0, "sampling_seconds": t_sample,
              "total_seconds": time.perf_counter() - t0}
    return ScalingFit._from_sampling(smodel, runs, priors, scale, trace, settings, timing)


def _wait_interruptible(background):
    try:
        return background.wait()
    except KeyboardInterrupt:
        background.cancel()
        raise KeyboardInterrupt("fit interrupted; no result was kept and the session is usable") from None


def _sample_nutpie(graph, values, point, vector, settings):
    import nutpie

    if graph.nutpie_model is None:
        graph.nutpie_model = nutpie.compile_pymc_model(graph.pymc_model, var_names=list(graph.published))
    compiled = graph.nutpie_model.with_data(**values)
    t = time.perf_counter()
    background = nutpie.sample(
        compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=settings.cores,
        seed=settings.random_seed, progress_bar=settings.progressbar, save_warmup=False,
        adaptation="low_rank", init_mean=vector, target_accept=settings.target_accept, blocking=False,
    )
    trace = _wait_interruptible(background)
    return trace, time.perf_counter() - t


def _untransformed(graph, point):
    """Constrained values of the free variables at an unconstrained point (for ``initvals``)."""
    m = graph.pymc_model
    out = {}
    for rv in m.free_RVs:
        value = point[m.rvs_to_values[rv].name]
        transform = m.rvs_to_transforms.get(rv)
        if transform is not None:
            value = transform.backward(value, *rv.owner.inputs).eval()
        out[rv.name] = np.asarray(value)
    return out


def _sample_pymc_like(graph, point, settings, nuts_sampler):
    import pymc as pm

    t = time.perf_counter()
    with graph.pymc_model, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        trace = pm.sample(
            draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=settings.cores,
            random_seed=settings.random_seed, nuts_sampler=nuts_sampler, initvals=_untransformed(graph, point),
            progressbar=settings.progressbar, target_accept=settings.target_accept,
            var_names=list(graph.published), compute_convergence_checks=False,
        )
    return trace, time.perf_counter() - t


def _sample_pymc(graph, values, point, vector, settings):
    return _sample_pymc_like(graph, point, settings, "pymc")


def _sample_numpyro(graph, values, point, vector, settings):
    try:
        import numpyro  # noqa: F401
    except ImportError:
        raise BayescaleError("sampler='numpyro' needs the jax extra: pip install 'bayescale[jax]'") from None
    return _sample_pymc_like(graph, point, settings, "numpyro")
