"""Sampling the PyMC graph behind a :class:`ScalingModel`: the mode search, the compiled log density, NUTS.

The graph itself, built once per model structure with the data swapped in, is :mod:`bayescale.fitting.graph`.
Chains start near the posterior mode, found by a multi-start L-BFGS on the unconstrained log density:
scaling-law posteriors have poor local modes that NUTS warm-up does not always escape. Pooled groups are
centred or not as their runs say (:mod:`bayescale.fitting.centring`); a fit that fails its diagnostics is sampled
again with more tuning (:data:`ESCALATION`).

With nutpie, the sampler's compiled log density also serves the mode search (one
compile, not two), and it is kept on disk across processes (see
:mod:`bayescale.base.compiled`): a fresh process loads it instead of compiling.
"""

from __future__ import annotations

import json
import threading
import sys
import time
import warnings

import numpy as np

from ..base.errors import BayescaleError
from ..base.compiled import LogpGrad, compile_model
from .fit import ScalingFit
from ..base.progress import KeyProgress
from .centring import choose_centring
from .graph import Graph, centring_targets, data_values, graph_for
from .modelpriors import priors_for

__all__ = ["run_sampler", "find_mode", "compile_for_nutpie"]


N_STARTS = 8


#: The graph cache, and the data swapped into each cached graph, serve one fit at a time: fits started from several
#: threads of a process take turns here (fit_many runs fits in separate processes, each with its own cache).
_LOCK = threading.RLock()


def _set_data(graph: Graph, values: dict) -> None:
    m = graph.pymc_model
    for name, v in values.items():
        m[name].set_value(v)


def find_mode(graph: Graph, rng, n_starts=N_STARTS, logp_grad=None, progress=None):
    """Multi-start L-BFGS for the mode of the unconstrained log density.

    `logp_grad` maps the raveled unconstrained point (value variables in model
    order) to ``(logp, gradient)``; default: the graph's PyTensor function.
    `progress` (a :class:`~bayescale.base.progress.KeyProgress` over the starts,
    optional) shows the starts done: ok (a finite end point) or failed.

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

    if logp_grad is None:
        logp_grad = graph.flat_logp_grad()

    def objective(x):
        logp, grad = logp_grad(x)  # NaN where a trial point is outside the support (e.g. nu underflowed to 0)
        val, grad = -logp, -grad
        if not np.isfinite(val) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(x)
        return val, grad

    from threadpoolctl import threadpool_limits

    best = None
    # One BLAS thread: L-BFGS-B's tiny vector operations run many times slower with a thread pool
    # contending for the cores (measured 1.6 ms instead of microseconds per step on a loaded machine).
    ok = 0
    with threadpool_limits(1, user_api="blas"):
        for i in range(n_starts):
            x = x0 if i == 0 else x0 + rng.normal(0.0, 1.0, size=x0.size)
            with np.errstate(all="ignore"):
                res = minimize(objective, x, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
            if progress is not None:
                ok += bool(res.fun < 1e299)
                progress.update(ok=ok, failed=i + 1 - ok, running=int(i + 1 < n_starts))
    if progress is not None:
        progress.close()
    if best is None or best.fun >= 1e299:
        raise BayescaleError("could not find a finite starting point for the sampler; check the priors and data")
    return dict(zip(names, unravel(best.x))), best.x


def compile_for_nutpie(graph: Graph, cache=None, notice=False):
    """nutpie's compiled model of `graph`, once per process: loaded from the disk cache, or compiled (and stored).

    With `notice`, a compile (not a cache hit) first says on stderr what it is doing and for how long.
    Returns the seconds it took (0 when the process had it already).
    """
    if graph.nutpie_model is not None:
        return 0.0

    def say():
        print("bayescale: compiling this model's log density (first fit of this model structure on this machine, "
              "10-40 s; later fits load it from the cache in about a second)", file=sys.stderr, flush=True)

    t = time.perf_counter()
    graph.nutpie_model, graph.nutpie_source = compile_model(graph, graph.n_groups, cache,
                                                            on_compile=say if notice else None)
    return time.perf_counter() - t


def run_sampler(smodel, runs, settings, cache=None):
    """Fit `smodel` to `runs`: resolve priors, swap data into the cached graph, sample.

    `cache` is the folder of compiled models (see :func:`bayescale.base.compiled.cache_dir`). The fit's
    ``timing`` records where the time went: ``imports_seconds`` (PyMC and the sampler, paid by the first
    fit of a process), ``graph_seconds`` (building the PyMC graph, about 0 once the process has it), ``compile_seconds`` and ``compile_source`` (the sampler's compiled log density:
    ``"process"`` when already in memory, ``"disk"`` when loaded from the cache folder, ``"compiled"``
    otherwise), ``mode_seconds`` (the mode search), ``sampling_seconds``, ``result_seconds`` (building
    the result and its checks), ``setup_seconds`` (everything before sampling), ``total_seconds`` and
    ``attempts``.
    """
    with _LOCK:
        return _run_sampler(smodel, runs, settings, cache)


def _run_sampler(smodel, runs, settings, cache):
    scale, n_offsets, priors = priors_for(smodel, runs)
    t0 = time.perf_counter()
    import pymc  # noqa: F401  (the first fit of a process pays the imports: timed on their own)

    if settings.sampler == "nutpie":
        import nutpie  # noqa: F401
    t_imports = time.perf_counter()
    graph = graph_for(smodel, priors, len(runs.groups or ()) or 1, n_offsets)
    values = data_values(smodel, runs, priors, scale)
    _set_data(graph, values)
    t_graph = time.perf_counter()
    logp_grad, t_compile, source = None, 0.0, ""
    if settings.sampler == "nutpie":
        t_compile = compile_for_nutpie(graph, cache, notice=settings.notices)
        source = graph.nutpie_source if t_compile else "process"

        names = [v.name for v in graph.pymc_model.value_vars]
        if list(graph.nutpie_model.shape_info[0][:len(names)]) == names:  # nutpie's order of the free variables
            logp_grad = LogpGrad(graph.nutpie_model.with_data(**values))
    t_modes = time.perf_counter()
    rng = np.random.default_rng(settings.random_seed)
    bar = None
    if settings.progressbar:
        bar = KeyProgress(N_STARTS, enabled=True, description=f"posterior mode ({runs.n_runs:,} runs): starts")
    point, vector = find_mode(graph, rng, logp_grad=logp_grad, progress=bar)
    if centring_targets(smodel):
        point, vector = choose_centring(graph, smodel, priors, values, point, vector,
                                         logp_grad if logp_grad is not None else graph.flat_logp_grad())
    t_mode = time.perf_counter()
    sampler = {"nutpie": _sample_nutpie, "pymc": _sample_pymc, "numpyro": _sample_numpyro}[settings.sampler]
    attempt, t_sample = settings, 0.0
    factors = ESCALATION if settings.escalate else ()
    for i in range(len(factors) + 1):
        trace, seconds = sampler(graph, values, point, vector, attempt)
        t_sample += seconds
        timing = {"imports_seconds": t_imports - t0, "graph_seconds": t_graph - t_imports, "compile_seconds": t_compile, "compile_source": source,
                  "mode_seconds": t_mode - t_modes, "setup_seconds": t_mode - t0, "sampling_seconds": t_sample,
                  "total_seconds": time.perf_counter() - t0, "attempts": i + 1}
        t_result = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = ScalingFit._from_sampling(smodel, runs, priors, scale, trace, attempt, timing)
        now = time.perf_counter()
        timing.update(result_seconds=now - t_result, total_seconds=now - t0)
        fit.idata.attrs["timing"] = json.dumps(timing)
        if i == len(factors) or fit.converged:
            for w in caught:  # the warnings of the fit returned, not of the attempts discarded
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return fit
        attempt = _escalated(settings, attempt, factors[i], fit.diagnostics()["divergences"])


#: Escalation of a fit that fails its diagnostics: the factor on tuning steps and draws of each further
#: attempt. Sampling costs at most 1 + 2 + 4 + 8 = 15 times the first attempt, and only for fits that need it.
ESCALATION = (2, 4, 8)
#: Target acceptance of the attempts after one that diverged.
ESCALATED_TARGET_ACCEPT = 0.99


def escalated(tune, draws, target_accept, factor, divergences):
    """The next attempt's tuning steps, draws and target acceptance after one that failed its diagnostics.

    `tune` and `draws` are the first attempt's, `target_accept` the failed attempt's: `factor` times the
    first's tuning and draws, and :data:`ESCALATED_TARGET_ACCEPT` (or higher) after divergences. Loss fits
    and downstream links escalate by this one rule.

    Examples
    --------
    >>> escalated(1000, 1000, 0.8, 2, divergences=3)
    (2000, 2000, 0.99)
    """
    target = max(target_accept, ESCALATED_TARGET_ACCEPT) if divergences else target_accept
    return tune * factor, draws * factor, target


def _escalated(settings, previous, factor, divergences):
    """The next attempt: `factor` times the tuning and draws, a higher target acceptance after divergences."""
    from dataclasses import replace

    tune, draws, target = escalated(settings.tune, settings.draws, previous.target_accept, factor, divergences)
    return replace(settings, tune=tune, draws=draws, target_accept=target)


def _wait_interruptible(background):
    try:
        return background.wait()
    except KeyboardInterrupt:
        background.cancel()
        raise KeyboardInterrupt("fit interrupted; no result was kept and the session is usable") from None


def _sample_nutpie(graph, values, point, vector, settings):
    import nutpie

    compile_for_nutpie(graph)
    compiled = graph.nutpie_model.with_data(**values)
    t = time.perf_counter()
    background = nutpie.sample(
        compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=settings.cores,
        seed=settings.random_seed, progress_bar=settings.progressbar, save_warmup=False,
        adaptation=graph.adaptation, init_mean=vector, target_accept=settings.target_accept, blocking=False,
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
