"""fit_many speed: 24 independent Chinchilla fits (3 datasets x 8 eval sets) on a 2-worker Dask
LocalCluster, against a plain loop of ``model.fit`` in one process.

The data are shaped like the bundled Chinchilla runs: each dataset is 80 of the 240 (N, D) points,
each eval set a different set of true parameters (E, A, B, alpha, beta varied around the published
fit) with 1% noise on log loss. Every fit: 4 chains x 1000 draws after 1000 tuning steps (the package
default). The loop runs chains in parallel over the cores (``cores=2``) as a notebook user would;
fit_many runs one fit per worker with chains in sequence (``cores=1``).

Each way runs in a fresh process, so both pay imports and the graph building once in the loop's
process and once in each worker; the compiled model comes from the on-disk cache (bayescale.base.compiled),
filled by whichever process needs it first (``BAYESCALE_CACHE_DIR=off`` shows the cost without it).

Run: .venv/bin/python benchmarks/bench_many.py [--draws 1000] [--tune 1000]
"""

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time, warnings
t0 = time.perf_counter()
import numpy as np, pandas as pd
import bayescale as bs
draws, tune, how = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
warnings.simplefilter("ignore")

base = bs.datasets.load_chinchilla(drop_outliers=True).reset_index(drop=True)
rng = np.random.default_rng(0)
parts = []
for d in range(3):
    rows = base.iloc[d::3]  # 80 runs each, spanning the same (N, D) range
    for e in range(8):
        p = dict(E=rng.uniform(1.6, 2.2), A=406.4 * np.exp(rng.normal(0, 0.3)), B=410.7 * np.exp(rng.normal(0, 0.3)),
                 alpha=rng.uniform(0.30, 0.38), beta=rng.uniform(0.25, 0.33))
        loss = bs.get_law("chinchilla").loss({"N": rows.N.to_numpy(), "D": rows.D.to_numpy()}, p)
        noisy = loss * np.exp(0.01 * rng.standard_normal(len(rows)))
        parts.append(pd.DataFrame({"dataset": f"data{d}", "eval_set": f"eval{e}", "N": rows.N.to_numpy(),
                                   "D": rows.D.to_numpy(), "loss": noisy}))
runs = pd.concat(parts, ignore_index=True)
model = bs.ScalingModel("chinchilla")
out = {}
t = time.perf_counter()
if how == "loop":
    fits, per_fit = {}, []
    for key, rows in runs.groupby(["dataset", "eval_set"], sort=False):
        t1 = time.perf_counter()
        fits[key] = model.fit(rows, draws=draws, tune=tune, chains=4, cores=os.cpu_count(),
                              random_seed=bs.many.batch.key_seed(1, key))
        per_fit.append(time.perf_counter() - t1)
    out.update(first_fit_s=per_fit[0], later_fit_s=float(np.median(per_fit[1:])))
    converged = sum(f.converged for f in fits.values())
else:
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out["cluster_start_s"] = time.perf_counter() - t
        fits = bs.fit_many(model, runs, by=["dataset", "eval_set"], executor=client, draws=draws, tune=tune,
                           chains=4, cores=1, random_seed=1, progressbar=False)
    seconds = [f.timing["total_seconds"] for f in fits.fits.values()]
    out.update(first_fit_s=max(seconds), later_fit_s=float(np.median(seconds)), failed=len(fits.errors))
    converged = len(fits) - len(fits.not_converged)
out.update(fits_s=time.perf_counter() - t, process_s=time.perf_counter() - t0, n_fits=24, converged=converged)
print("RESULT" + json.dumps(out))
"""


def run(how, draws, tune):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(draws), str(tune), how], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            res = json.loads(line[6:])
            res["wall_s"] = time.perf_counter() - t
            return res
    raise SystemExit(f"{how} failed:\n{proc.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each way, alternating; the fastest is shown")
    args = parser.parse_args()
    runs = {"loop": [], "cluster": []}
    for _ in range(args.repeat):  # alternate, so load from other processes hits both ways alike
        for how in runs:
            runs[how].append(run(how, args.draws, args.tune))
    results = {how: min(rs, key=lambda r: r["fits_s"]) for how, rs in runs.items()}
    print(f"24 Chinchilla fits, 4 chains x {args.draws} draws (+{args.tune} tuning), 80 runs each; "
          f"best of {args.repeat} (all fits seconds: "
          + "; ".join(f"{how} {', '.join(f'{r['fits_s']:.1f}' for r in rs)}" for how, rs in runs.items()) + ")")
    print(f"{'way':<22} {'wall':>7} {'fits':>7} {'per fit':>8} {'1st fit':>8} {'later':>7} {'conv':>5}")
    for how, label in (("loop", "plain loop (cores=2)"), ("cluster", "fit_many, LocalCluster")):
        r = results[how]
        print(f"{label:<22} {r['wall_s']:7.1f} {r['fits_s']:7.1f} {r['fits_s'] / r['n_fits']:8.2f} "
              f"{r['first_fit_s']:8.1f} {r['later_fit_s']:7.2f} {r['converged']:5d}")
    loop, cluster = results["loop"], results["cluster"]
    print(f"speed-up of fit_many over the loop: {loop['fits_s'] / cluster['fits_s']:.2f}x "
          f"(both include compilation; cluster start-up {cluster['cluster_start_s']:.1f} s)")
    print("seconds; wall = whole process incl. imports; fits = from data ready to all fits done; "
          "per fit = fits / 24; 1st fit pays the compile (on the cluster: the slowest fit); "
          "later = median of the other fits; "
          "conv = fits passing R-hat/ESS/divergence checks")


if __name__ == "__main__":
    main()
