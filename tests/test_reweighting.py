"""Posterior draws reweighted by new data: importance weights, Kish effective draws, weighted intervals."""

import numpy as np
import pytest

from bayescale.core import reweighting
def test_weights_sum_to_one_and_kish_ess_counts_effective_draws():
    rng = np.random.default_rng(0)
    lr = rng.normal(size=(5, 4000))
    for psis in (True, False):
        w, k = reweighting.importance_weights(lr, psis=psis)
        assert w.shape == lr.shape and np.allclose(w.sum(axis=-1), 1.0) and (w >= 0).all()
        assert k.shape == (5,) and (np.isfinite(k).all() if psis else np.isnan(k).all())
    # equal weights: every draw counts; all weight on m draws: m draws count
    assert reweighting.kish_ess(np.ones(4000)) == pytest.approx(4000)
    w = np.zeros(4000)
    w[:25] = 1.0
    assert reweighting.kish_ess(w) == pytest.approx(25)
    # log-normal weights of log-sd s: ESS / n -> exp(-s^2) (Kong 1992)
    w, _ = reweighting.importance_weights(0.5 * rng.standard_normal(200_000), psis=False)
    assert reweighting.kish_ess(w) / w.size == pytest.approx(np.exp(-0.25), rel=0.02)


def test_weighted_interval_is_the_interval_of_the_weighted_draws():
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_001)
    lo, hi = reweighting.weighted_interval(x, np.ones_like(x), 0.9)
    assert (lo, hi) == tuple(np.quantile(x, [0.05, 0.95], method="inverted_cdf"))
    # weights proportional to a Normal(1, 1) density over Normal(0, 1) draws: the interval of Normal(1, 1)
    w = np.exp(x - 0.5)
    lo, hi = reweighting.weighted_interval(x, w, 0.9)
    assert lo == pytest.approx(1 - 1.645, abs=0.06) and hi == pytest.approx(1 + 1.645, abs=0.06)
