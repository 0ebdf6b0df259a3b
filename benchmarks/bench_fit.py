"""Fit speed of the Chinchilla law on the 240 bundled runs, per NUTS sampler.

Each sampler runs in a fresh process that fits twice (4 chains x 1000 draws after 1000 tuning
steps): the first fit pays graph building and compilation, the second reuses them.

Targets on a 2-core machine: max R-hat <= 1.01, min bulk ESS >= 1000, mean leapfrog steps per
draw <= 31, second-fit end-to-end <= 10 s.

Run: ./dev bench   or   .venv/bin/python benchmarks/bench_fit.py [sampler ...]
"""

import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import bayescale as bs
t_import = time.perf_counter() - t0
runs = bs.datasets.load_chinchilla(drop_outliers=True)
model = bs.ScalingModel("chinchilla")
out = {"import_s": t_import}
for label in ("first", "second"):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(runs, random_seed=1, sampler=sys.argv[1])
    out[label + "_fit_s"] = time.perf_counter() - t
d = fit.diagnostics()
out.update(sampling_s=d["sampling_seconds"], steps=d["mean_leapfrog_steps"], depth=d["max_tree_depth"],
           min_ess=d["min_ess_bulk"], ess_per_s=d["min_ess_bulk"] / d["sampling_seconds"],
           max_rhat=d["max_r_hat"], divergences=d["divergences"],
           medians={k: float(fit.posterior[k].median()) for k in ("E", "alpha", "beta")})
print("RESULT" + json.dumps(out))
"""


def run(sampler):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, sampler], capture_output=True, text=True)
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            res = json.loads(line[6:])
            res["process_s"] = wall
            return res
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main(samplers):
    print(f"{'sampler':<8} {'import':>7} {'1st fit':>8} {'2nd fit':>8} {'sampling':>9} {'steps':>6} "
          f"{'depth':>5} {'minESS':>7} {'ESS/s':>7} {'maxRhat':>8} {'div':>4}")
    for s in samplers:
        r = run(s)
        if "error" in r:
            print(f"{s:<8} failed: {r['error']}")
            continue
        print(f"{s:<8} {r['import_s']:7.1f} {r['first_fit_s']:8.1f} {r['second_fit_s']:8.1f} "
              f"{r['sampling_s']:9.2f} {r['steps']:6.1f} {r['depth']:5d} {r['min_ess']:7.0f} "
              f"{r['ess_per_s']:7.0f} {r['max_rhat']:8.4f} {r['divergences']:4d}")
        print(f"{'':8} medians E={r['medians']['E']:.4f} alpha={r['medians']['alpha']:.4f} "
              f"beta={r['medians']['beta']:.4f}")
    print("seconds; steps = mean leapfrog steps per draw; ESS/s = min bulk ESS / sampling seconds")


if __name__ == "__main__":
    main(sys.argv[1:] or ["nutpie", "pymc", "numpyro"])
