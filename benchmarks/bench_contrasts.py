"""Contrasts between groups recover a planted compute multiplier, over data seeds.

Three simulated 30-run groups of the Chinchilla form that differ in every parameter (the design of
tests/conftest.py: alpha 0.25, 0.34, 0.45; noise 0.5%, 3%, 0.5% on log loss), all five parameters
partial, default settings. For each data seed the true compute multiplier of g1 and of g2 against g0 is
computed from the planted laws at 1e19 and 1e21 FLOPs (inside and at the edge of g0's runs) and checked
against the 90% interval of ``bayescale.contrast``.

Target: the truth inside the 90% interval in at least 9 of 10 seeds, per pair and budget. Ten seeds cannot
show it (a calibrated interval holds 9 or 10 of 10 only 74% of the time), so 60 are run by default and
each rate is printed with its 90% binomial (Clopper-Pearson) interval.

Run: ./dev bench contrasts   or   .venv/bin/python benchmarks/bench_contrasts.py [n_seeds]
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import beta

import bayescale as bs
from bayescale.core.allocation import optimal_allocation
from bayescale.analysis.contrasts import _crossing
from bayescale.core.laws import get_law
from bayescale.core.simulate import simulate_groups

TRUE = dict(E=np.array([1.7, 1.9, 1.8]), A=np.array([150.0, 500.0, 3000.0]), B=np.array([900.0, 2500.0, 1600.0]),
            alpha=np.array([0.25, 0.34, 0.45]), beta=np.array([0.30, 0.36, 0.33]))
SIGMAS = (0.005, 0.03, 0.005)
BUDGETS = (1e19, 1e21)
POOLING = {k: "partial" for k in TRUE}


def true_multiplier(reference, other, budget):
    law = get_law("chinchilla")
    truth = [{k: np.array([v[g]]) for k, v in TRUE.items()} for g in (reference, other)]
    target = optimal_allocation(law, truth[0], np.array([budget]))["loss"][:, 0]
    offsets = np.arange(-6.0, 6.0001, 0.001)
    frontier = optimal_allocation(law, truth[1], budget * 10.0 ** offsets)["loss"]
    return float(_crossing(frontier, target, offsets)[0])


def runs(seed):
    parts = [simulate_groups([30], {k: v[g:g + 1] for k, v in TRUE.items()}, sigma=sigma,
                             random_seed=100 * seed + g, labels=[f"g{g}"]) for g, sigma in enumerate(SIGMAS)]
    return pd.concat(parts, ignore_index=True)


def main(n_seeds=60):
    rows = []
    for seed in range(n_seeds):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.ScalingModel("chinchilla", pooling=POOLING).fit(runs(seed), random_seed=seed, progressbar=False)
        wall = time.perf_counter() - t
        d = fit.diagnostics()
        for other in ("g1", "g2"):
            table = bs.contrast(fit, "g0", other, list(BUDGETS))
            for row, budget in zip(table.itertuples(), BUDGETS):
                truth = true_multiplier(0, int(other[1]), budget)
                rows.append(dict(seed=seed, pair=f"g0-{other}", C=budget, truth=truth,
                                 lower=row.compute_multiplier_lower, median=row.compute_multiplier_median,
                                 upper=row.compute_multiplier_upper,
                                 inside=row.compute_multiplier_lower <= truth <= row.compute_multiplier_upper,
                                 converged=d["converged"], divergences=d["divergences"], fit_s=round(wall, 1)))
        print(pd.DataFrame(rows[-4:]).round(3).to_string(index=False), flush=True)
    out = pd.DataFrame(rows)
    print("\ntruth inside the 90% interval (target: a rate of at least 9 in 10 per pair and budget), with the 90% "
          "binomial interval of each rate:")
    table = out.groupby(["pair", "C"])["inside"].agg(["sum", "count"])
    table = pd.concat([table, pd.DataFrame([out["inside"].agg(["sum", "count"])], index=[("all", "")])])
    table["rate"] = table["sum"] / table["count"]
    table["rate_lower"] = [beta.ppf(0.05, k, n - k + 1) if k > 0 else 0.0 for k, n in zip(table["sum"], table["count"])]
    table["rate_upper"] = [beta.ppf(0.95, k + 1, n - k) if k < n else 1.0 for k, n in zip(table["sum"], table["count"])]
    print(table.round(3).to_string())
    print("truth below / above the interval:", int((out["truth"] < out["lower"]).sum()), "/",
          int((out["truth"] > out["upper"]).sum()))
    print(f"converged {out.drop_duplicates('seed')['converged'].sum()} of {n_seeds} fits; "
          f"median fit {out.drop_duplicates('seed')['fit_s'].median():.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
