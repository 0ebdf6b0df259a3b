"""Which pooling leave-one-out prefers on real ladders: Porian et al. (2024)'s 15 configurations.

Fits the 1745 runs with every parameter shared, with E and A partial, with every parameter partial (the
default for runs with groups), and each configuration alone (15 fits), and compares them by PSIS-LOO:
the summed expected log predictive density of a left-out run (log loss scale), its standard error, the
difference to the best with the standard error of the pointwise differences, and the runs whose Pareto
k exceeds 0.7 (their estimate is unreliable). Prints the time of each fit.

Run: ./dev bench pooling_loo [--seed 1]
"""

import argparse
import sys
import time
import warnings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    import bayescale as bs
    from bayescale.runs.corpus import bundled_ladders
    from bayescale.analysis.selection import loo

    ladders = bundled_ladders()
    porian = ladders[ladders["source"] == "porian2024"]
    runs = porian[["ladder", "N", "D", "C", "loss"]].rename(columns={"ladder": "group"}).reset_index(drop=True)
    runs["group"] = runs["group"].str.removeprefix("porian2024/")
    choices = {"every parameter shared": {}, "E and A partial": {"E": "partial", "A": "partial"},
               "every parameter partial (default)": None}
    pointwise, high_k = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, pooling in choices.items():
            t = time.perf_counter()
            fit = bs.ScalingModel("chinchilla", pooling=pooling).fit(runs, random_seed=args.seed, progressbar=False)
            result = loo(fit)
            pointwise[label] = np.asarray(result.elpd_i).ravel()
            high_k[label] = int((np.asarray(result.pareto_k) > 0.7).sum())
            d = fit.diagnostics()
            print(f"{label}: {time.perf_counter() - t:.0f} s, max R-hat {d['max_r_hat']:.4f}, "
                  f"{d['divergences']} divergences", flush=True)
        alone, k, t = np.full(len(runs), np.nan), 0, time.perf_counter()
        for _, sub in runs.groupby("group"):
            fit = bs.ScalingModel("chinchilla").fit(sub.drop(columns="group"), random_seed=args.seed,
                                                    progressbar=False)
            result = loo(fit)
            alone[sub.index.to_numpy()] = np.asarray(result.elpd_i).ravel()
            k += int((np.asarray(result.pareto_k) > 0.7).sum())
        pointwise["each configuration alone"], high_k["each configuration alone"] = alone, k
        print(f"each configuration alone: {time.perf_counter() - t:.0f} s for 15 fits", flush=True)
    best = max(pointwise, key=lambda name: pointwise[name].sum())
    rows = []
    for name, v in pointwise.items():
        diff = v - pointwise[best]
        rows.append({"pooling": name, "elpd_loo": v.sum(), "se": np.sqrt(v.size * v.var()), "diff": diff.sum(),
                     "diff_se": np.sqrt(diff.size * diff.var()), "pareto_k_above_0.7": high_k[name]})
    print(pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).round(1).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1:])
