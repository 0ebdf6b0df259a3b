"""Simulation-based calibration of every shipped law: >= 100 replications each, per-parameter
uniformity p-values (chi-square on binned ranks, Talts et al. 2018).

Design: 24 bundled runs (Chinchilla; DataBlations with unique tokens for the data-constrained law);
priors: the default data-scaled ones, resolved once from the design's losses and then fixed; each
replication is fitted with 2 chains x 250 draws after 300 tuning steps, thinned to 99 draws per rank.
The fits run through fit_many on a 2-worker Dask LocalCluster.

Under calibration each p-value is uniform: with ~40 p-values in all, a few below 0.05 are expected;
a law is flagged when a p-value falls below 0.001 / (its number of parameters) (Bonferroni).

Run: .venv/bin/python benchmarks/bench_sbc.py [--sims 100] [--noise-scale 1] [law ...]
"""

import argparse
import time
import warnings

import pandas as pd

import bayescale as bs

LAWS = ("power_n", "power_d", "power_c", "chinchilla", "kaplan", "data_constrained")


def design_for(law) -> pd.DataFrame:
    if law == "data_constrained":
        runs = bs.datasets.load_datablations()
        return runs[runs.loss < 4].sample(24, random_state=0)[["N", "D", "U", "loss"]]
    return bs.datasets.load_chinchilla(drop_outliers=True).sample(24, random_state=0)[["N", "D", "C", "loss"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("laws", nargs="*", default=list(LAWS))
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--noise-scale", type=float, default=1.0,
                        help="!= 1 mis-scales the simulated noise (a negative control that must fail)")
    parser.add_argument("--likelihood", default="student_t", choices=["student_t", "normal"])
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    print(f"SBC: {args.sims} replications per law, {args.likelihood} likelihood, noise_scale {args.noise_scale}, "
          "2 chains x 250 draws (+300 tuning), 99 draws per rank, 24-run design")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        for law in args.laws:
            model = bs.ScalingModel(law, likelihood=args.likelihood)
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = bs.sbc(model, design_for(law), n_sims=args.sims, draws=250, tune=300, chains=2,
                                noise_scale=args.noise_scale, executor=client, random_seed=2026, progressbar=False)
            seconds = time.perf_counter() - t
            table = result.test()
            threshold = 0.001 / len(table)
            flagged = table.index[table.p_value < threshold].tolist()
            diag = result.fits.diagnostics()
            print(f"\n== {law}: {result.n_sims} fitted, {len(result.errors)} failed, "
                  f"{int((~result.converged).sum())} not converged (median max R-hat "
                  f"{diag.max_r_hat.median():.3f}, fits with divergences {(diag.divergences > 0).sum()}); "
                  f"{seconds:.0f} s ({seconds / args.sims:.2f} s per replication incl. compile); "
                  f"{table.bins.iloc[0]} bins")
            print("   " + "  ".join(f"{name} p={row.p_value:.2g}" for name, row in table.iterrows()))
            print(f"   verdict: {'MISCALIBRATED: ' + ', '.join(flagged) if flagged else 'calibrated'} "
                  f"(threshold p < {threshold:.1e})")


if __name__ == "__main__":
    main()
