"""Wall time of the next-run ranking, and its prediction against refits, on a synthetic Chinchilla ladder.

In one fresh process:

1. fit 24 Chinchilla-form runs over 1.5 decades of N (30M to 1B, 1% noise; the law's form known, so
   ``form_uncertainty=None``; 4 chains x 1000 draws);
2. time ``fit.recommend_runs`` for 49 candidates (a 7 x 7 grid of N and D) and each quantity, 100 outcomes
   per candidate;
3. rank 14 candidates on two lines of equal compute (1e20, 1e21 FLOP) for the width of log10 N_opt at
   1e22 FLOP, then refit the ladder plus one run of the top candidate, and plus one run of a random candidate
   of the same compute, each drawn from the true law with its noise, and print predicted and realised
   shrinkage.

Target: 50 candidates in well under a minute on 2 cores (no refit per candidate); realised shrinkage within
a factor 1.5 of the prediction for the top candidate.

Run: .venv/bin/python benchmarks/bench_nextrun.py
"""

import time
import warnings

import numpy as np
import pandas as pd

TRUE = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def main():
    import bayescale as bs
    from bayescale.analysis import nextrun
    warnings.simplefilter("ignore")
    law = bs.get_law("chinchilla")
    rng = np.random.default_rng(0)
    n = np.geomspace(3e7, 1e9, 24) * 10 ** rng.uniform(-0.05, 0.05, 24)
    d = n * 20 * 10 ** rng.uniform(-0.5, 0.5, 24)
    runs = pd.DataFrame({"N": n, "D": d, "loss": law.loss({"N": n, "D": d}, TRUE) * np.exp(0.01 * rng.standard_normal(24))})
    model = bs.ScalingModel("chinchilla", form_uncertainty=None)
    kw = dict(random_seed=1, draws=1000, tune=1000, progressbar=False)
    t = time.perf_counter()
    fit = model.fit(runs, **kw)
    print(f"ladder fit: {time.perf_counter() - t:.1f} s, converged {fit.converged}")

    grid = nextrun.candidate_grid((3e7, 3e9), (6e8, 2e11), points=7)
    for quantity, ask in (("n_opt", dict(budget=1e22)), ("loss", dict(budget=1e22)),
                          ("new_run_loss", dict(budget=1e22)), ("budget_for", dict(target=2.2))):
        t = time.perf_counter()
        fit.recommend_runs(grid, quantity=quantity, random_seed=3, **ask)
        print(f"recommend_runs, {len(grid)} candidates x 100 outcomes, {quantity}: {time.perf_counter() - t:.1f} s")

    lines = np.geomspace(3e8, 3e10, 7)
    cands = pd.concat([pd.DataFrame({"N": lines, "D": c / (6 * lines)}) for c in (1e20, 1e21)], ignore_index=True)
    table = fit.recommend_runs(cands, quantity="n_opt", budget=1e22, random_seed=3)

    def width(f):
        lo, hi = np.quantile(np.log10(f.allocate_draws(1e22)["N"].values.ravel()), [0.05, 0.95])
        return hi - lo

    w0 = width(fit)
    top = table.iloc[0]
    same = table[np.isclose(table["C"], top["C"]) & (table["rank"] != 1)]
    other = same.iloc[np.random.default_rng(5).integers(len(same))]
    print(f"\nwidth of the 90% interval of log10 N_opt at 1e22 FLOP: {w0:.3f} decades")
    print(f"{'candidate':<10} {'N':>9} {'D':>9} {'predicted':>10} {'(se)':>7} {'realised':>9}")
    for name, row, seed in (("top", top, 11), ("random", other, 12)):
        x = {"N": np.array([row["N"]]), "D": np.array([row["D"]])}
        y = law.loss(x, TRUE) * np.exp(0.01 * np.random.default_rng(seed).standard_normal(1))
        refit = model.fit(pd.concat([runs, pd.DataFrame({**x, "loss": y})], ignore_index=True), **kw)
        print(f"{name:<10} {row['N']:9.3g} {row['D']:9.3g} {row['shrinkage_fraction']:10.3f} "
              f"{row['expected_width_se'] / w0:7.3f} {1 - width(refit) / w0:9.3f}")


if __name__ == "__main__":
    main()
