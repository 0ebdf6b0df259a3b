"""Wall time of the point-estimate baselines against the Bayesian fit, on the 240 Chinchilla runs.

In one fresh process, in this order:

1. Approach 3, adaptive search (the default; the first point fit also compiles the objective);
2. Approach 3, full search: L-BFGS-B from all 4500 starts of the published grid;
3. a 1000-resample bootstrap of the Approach 3 fit (warm-started refits);
4. the Bayesian fit (default model, 4 chains x 1000 draws after 1000 tuning steps), first in the
   process (builds and compiles the model graph) and second (reuses it).

Prints each time, the ratios, and whether the adaptive search found the full grid's optimum.
Target from the issue: the full Bayesian posterior costs less wall time than the point estimate's
grid search.

Run: ./dev bench   or   .venv/bin/python benchmarks/bench_point.py [n_boot]
"""

import os
import sys
import time
import warnings


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(n_boot=1000):
    t0 = time.perf_counter()
    import bayescale as bs

    t_import = time.perf_counter() - t0
    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    print(f"240 Chinchilla runs, {os.cpu_count()} cores; import {t_import:.1f} s")

    adaptive, t_adaptive = timed(lambda: bs.Approach3().fit(runs))
    full, t_full = timed(lambda: bs.Approach3(search="full").fit(runs))
    boot, t_boot = timed(lambda: adaptive.bootstrap(n_boot, random_seed=0))
    model = bs.ScalingModel("chinchilla")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        bayes1, t_bayes1 = timed(lambda: model.fit(runs, random_seed=1))
        bayes2, t_bayes2 = timed(lambda: model.fit(runs, random_seed=2))

    same = max(abs(adaptive.params[k] / full.params[k] - 1) for k in full.params)
    rows = [
        (f"Approach 3, adaptive search ({len(adaptive.starts)} starts, incl. compile)", t_adaptive),
        (f"Approach 3, full grid ({len(full.starts)} starts)", t_full),
        (f"bootstrap, {n_boot} resamples", t_boot),
        ("Bayesian fit, first in process (incl. graph compile)", t_bayes1),
        ("Bayesian fit, second in process", t_bayes2),
    ]
    print(f"\n{'step':<58} {'seconds':>8}")
    for label, t in rows:
        print(f"{label:<58} {t:8.2f}")
    print("\nratios")
    ratios = [
        ("Bayesian (2nd) / Approach 3 full grid", t_bayes2 / t_full),
        ("Bayesian (1st) / Approach 3 full grid", t_bayes1 / t_full),
        ("Bayesian (2nd) / Approach 3 adaptive", t_bayes2 / t_adaptive),
        (f"Bayesian (2nd) / bootstrap ({n_boot})", t_bayes2 / t_boot),
        ("Approach 3 full grid / adaptive", t_full / t_adaptive),
    ]
    for label, r in ratios:
        print(f"  {label:<44} {r:6.2f}")
    print(f"\nadaptive vs full grid optimum: largest relative parameter difference {same:.1e}; "
          f"objectives {adaptive.objective:.12g} vs {full.objective:.12g}")
    d = bayes2.diagnostics()
    print(f"Bayesian fit: converged {bayes2.converged}, sampling {d['sampling_seconds']:.1f} s, "
          f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}")
    print(f"target (Bayesian posterior faster than the full grid search): "
          f"{'met' if t_bayes2 < t_full else 'NOT met'} for the second fit, "
          f"{'met' if t_bayes1 < t_full else 'NOT met'} for the first")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
