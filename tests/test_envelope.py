"""The lower envelope of loss over compute: final runs (binned) and training curves (Approach 1)."""

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.runs.envelope import above_envelope, curve_envelope, envelope, frontier


def test_binned_frontier_is_the_cumulative_minimum_of_the_best_run_per_bin():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"N": 10 ** rng.uniform(7, 10, 200), "C": 10 ** rng.uniform(17, 22, 200),
                         "loss": rng.uniform(2, 4, 200)})
    env = frontier(runs, bins_per_decade=2)
    assert env.attrs["method"] == "bins"
    assert np.all(np.diff(env["C"]) > 0) and np.all(np.diff(env["loss"]) < 0)
    # brute force: no run reaches a lower loss with at most the compute of a frontier point
    for _, p in env.iterrows():
        assert not ((runs["C"] <= p["C"]) & (runs["loss"] < p["loss"])).any()
        assert runs.loc[p["run"], "loss"] == p["loss"]
    # every run the brute force finds undominated and best in its bin is on the envelope
    k = np.floor(np.log10(runs["C"]) * 2)
    best = runs.loc[runs.groupby(k)["loss"].idxmin()]
    undominated = [i for i, r in best.iterrows()
                   if not ((best["C"] < r["C"]) & (best["loss"] <= r["loss"])).any()]
    assert sorted(env["run"]) == sorted(undominated)


def test_levels_are_detected_and_edges_flagged():
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 1e8, 2e8, 4e8], "C": [1e19] * 3 + [1e20] * 3,
                         "loss": [3.0, 2.9, 3.1, 2.8, 2.6, 2.5]})
    env = frontier(runs)
    assert env.attrs["method"] == "levels"
    assert env["run"].tolist() == [1, 5] and env["edge"].tolist() == [False, True]
    assert env["n_candidates"].tolist() == [3, 3]
    # given levels: runs farther than resolution / 2 from every level are left out
    only = frontier(runs, levels=[1e19], resolution=0.1)
    assert only["run"].tolist() == [1]


def test_envelope_over_tokens_gives_the_data_limited_runs():
    runs = pd.DataFrame({"N": [1e8, 1e9, 1e8, 1e9], "D": [1e9, 1e9, 1e10, 1e10], "loss": [3.0, 2.8, 2.7, 2.4]})
    env = frontier(runs, over="D", bins_per_decade=1)
    assert env["run"].tolist() == [1, 3]  # the larger model at each D


def test_curve_envelope_matches_brute_force_minimum_over_curves():
    law = bs.get_law("chinchilla")
    params = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    sizes = np.geomspace(1e7, 1e9, 5)
    rows = []
    for r, n in enumerate(sizes):
        d = np.geomspace(n, 200 * n, 60)
        rows.append(pd.DataFrame({"run": f"r{r}", "N": n, "D": d, "loss": law.loss({"N": n + 0 * d, "D": d}, params)}))
    pts = pd.concat(rows, ignore_index=True)
    env = curve_envelope(pts, points_per_decade=10)
    assert env.attrs["method"] == "curves"
    # at each grid C, the exact law along each curve that reaches it: the chosen run is the best one
    for _, p in env.iterrows():
        reach = [(n, law.loss({"N": n, "D": p["C"] / (6 * n)}, params)) for n in sizes
                 if 6 * n * n <= p["C"] * (1 + 1e-9) and p["C"] <= 6 * n * 200 * n * (1 + 1e-9)]
        n_best = min(reach, key=lambda t: t[1])[0]
        assert p["N"] == n_best
        assert p["D"] == pytest.approx(p["C"] / (6 * p["N"]), rel=1e-6)
        assert p["loss"] == pytest.approx(min(t[1] for t in reach), rel=2e-3)  # interpolation between checkpoints
    assert envelope(pts, points_per_decade=10).equals(env)  # the dispatcher sees curves


def test_above_envelope_and_bad_input():
    env = pd.DataFrame({"C": [1e19, 1e20], "loss": [3.0, 2.5]})
    assert above_envelope(env, [1e19, 1e20], [3.0, 2.5]).tolist() == [0.0, 0.0]
    assert above_envelope(env, [1e20], [3.0])[0] == pytest.approx(np.log(3.0 / 2.5))
    runs = pd.DataFrame({"N": [1e8, 2e8], "C": [1e19, 1e20], "loss": [3.0, 2.9]})
    with pytest.raises(bs.SpecError, match="bins_per_decade"):
        frontier(runs, bins_per_decade=0)
    with pytest.raises(bs.SpecError, match="over"):
        frontier(runs, over="N")
    with pytest.raises(bs.SpecError, match="run='id'"):
        curve_envelope(runs, run="id")
    with pytest.raises(bs.DataError, match="N varies|the rows of one run share N"):
        curve_envelope(pd.DataFrame({"run": [0, 0], "N": [1e8, 2e8], "D": [1e9, 2e9], "loss": [3.0, 2.9]}))
    with pytest.raises(bs.DataError):
        frontier(pd.DataFrame({"N": [1e8, -1.0], "C": [1e19, 1e20], "loss": [3.0, 2.9]}))
