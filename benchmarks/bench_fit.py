"""Fit speed of the Chinchilla law on the 240 bundled runs: where a fresh process spends its time.

Each case runs in a fresh process that fits twice (4 chains x 1000 draws after 1000 tuning steps): the
first fit pays imports, graph building and the sampler's compile, the second reuses them. Cases:

- ``warm``: caches as a user has them after one fit (PyTensor's compile dir, bayescale's compiled
  models in a cache folder prepared by a first process);
- ``cold``: empty temporary caches (PYTENSOR_FLAGS base_compiledir, NUMBA_CACHE_DIR and
  BAYESCALE_CACHE_DIR all fresh): the first fit on a new machine;
- ``nocache``: warm PyTensor caches but no compiled-model cache (BAYESCALE_CACHE_DIR=off), i.e. the
  sampler compiled in every process, as before the cache existed.

Each case is repeated (``--repeat``, alternating, since other processes share the CPU) and the median
is shown. ``process`` is the wall time of the whole process (interpreter start to exit), ``import`` of
``import bayescale``; the first fit's breakdown comes from ``fit.timing``.

Targets on a 2-core machine: warm process <= 5 s end to end; cold no worse than nocache;
max R-hat <= 1.01, min bulk ESS >= 1000, mean leapfrog steps per draw <= 31.

Run: ./dev bench fit   or   .venv/bin/python benchmarks/bench_fit.py [--sampler nutpie] [--repeat 3]
     [--cases warm cold nocache] [--second]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import bayescale as bs
t_import = time.perf_counter() - t0
runs = bs.datasets.load_chinchilla(drop_outliers=True)
model = bs.ScalingModel("chinchilla")
out = {"import_s": t_import}
for label in ("first", "second")[: 1 + (sys.argv[2] == "1")]:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(runs, random_seed=1, sampler=sys.argv[1])
    out[label + "_fit_s"] = time.perf_counter() - t
    if label == "first":
        out["timing"] = fit.timing
d = fit.diagnostics()
out.update(sampling_s=d["sampling_seconds"], steps=d["mean_leapfrog_steps"], depth=d["max_tree_depth"],
           min_ess=d["min_ess_bulk"], max_rhat=d["max_r_hat"], divergences=d["divergences"],
           medians={k: float(fit.posterior[k].median()) for k in ("E", "alpha", "beta")})
print("RESULT" + json.dumps(out), flush=True)
"""

STEPS = ("imports_seconds", "graph_seconds", "compile_seconds", "mode_seconds", "sampling_seconds",
         "result_seconds")


def run(sampler, env, second):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, sampler, "1" if second else "0"], capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            res = json.loads(line[6:])
            res["process_s"] = wall
            return res
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def environment(case, folder):
    env = dict(os.environ)
    if case == "cold":
        fresh = tempfile.mkdtemp(prefix="bench-cold-", dir=folder)
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [env.get("PYTENSOR_FLAGS", ""),
                                                       f"base_compiledir={fresh}/pytensor"]))
        env["NUMBA_CACHE_DIR"] = f"{fresh}/numba"
        env["BAYESCALE_CACHE_DIR"] = f"{fresh}/bayescale"
    elif case == "nocache":
        env["BAYESCALE_CACHE_DIR"] = "off"
    else:
        env["BAYESCALE_CACHE_DIR"] = f"{folder}/warm"
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sampler", default="nutpie")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["warm", "cold", "nocache"])
    parser.add_argument("--second", action="store_true", help="also time a second fit in each process")
    args = parser.parse_args()
    results = {case: [] for case in args.cases}
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as folder:
        if "warm" in args.cases:  # fills the warm cache folder (and PyTensor's own cache)
            run(args.sampler, environment("warm", folder), False)
        for _ in range(args.repeat):
            for case in args.cases:
                results[case].append(run(args.sampler, environment(case, folder), args.second))
    print(f"sampler {args.sampler}; medians of {args.repeat} fresh processes per case (seconds)")
    print(f"{'case':<8} {'process':>8} {'import':>7} {'1st fit':>8} "
          + " ".join(f"{s.split('_')[0][:8]:>8}" for s in STEPS)
          + f" {'source':>8}" + (f" {'2nd fit':>8}" if args.second else ""))
    for case, rs in results.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            print(f"{case:<8} failed: {rs[0]['error']}")
            continue

        def med(f):
            return statistics.median(f(r) for r in ok)

        line = (f"{case:<8} {med(lambda r: r['process_s']):8.1f} {med(lambda r: r['import_s']):7.1f} "
                f"{med(lambda r: r['first_fit_s']):8.1f} "
                + " ".join(f"{med(lambda r, s=s: r['timing'].get(s, float('nan'))):8.2f}" for s in STEPS)
                + f" {ok[0]['timing'].get('compile_source', ''):>8}")
        if args.second:
            line += f" {med(lambda r: r['second_fit_s']):8.1f}"
        print(line)
        print(f"{'':8} all process s: {', '.join(f'{r['process_s']:.1f}' for r in ok)}; "
              f"steps {med(lambda r: r['steps']):.1f}, max depth {max(r['depth'] for r in ok)}, "
              f"min ESS {min(r['min_ess'] for r in ok):.0f}, max R-hat {max(r['max_rhat'] for r in ok):.4f}, "
              f"divergences {max(r['divergences'] for r in ok)}; medians E={ok[0]['medians']['E']:.4f} "
              f"alpha={ok[0]['medians']['alpha']:.4f} beta={ok[0]['medians']['beta']:.4f}")
    print("process = interpreter start to exit; the columns after '1st fit' are fit.timing of the first fit: "
          "imports (PyMC, the sampler), graph, compile (the sampler's compiled model; source: disk = loaded "
          "from the cache folder), mode search, sampling, result (tables and checks)")


if __name__ == "__main__":
    main()
