"""How each pooled group's centring is chosen from the data (bayescale.fitting.centring)."""

import numpy as np

from bayescale.core.priors import Gamma
from bayescale.fitting.centring import _centring_weights, _offset_marginal_variances


def _weights(deviations, sd, precision, prior=Gamma(2, 4), seed=0):
    draws = prior.sample(np.random.default_rng(seed), 4000)
    return _centring_weights(np.asarray(deviations, float), sd, np.asarray(precision, float), draws)


def test_groups_that_clearly_differ_and_are_pinned_down_are_centred():
    # ten groups 0.3 apart on average, each known to 0.01: the spread is far from 0 in every posterior draw
    rng = np.random.default_rng(1)
    dev = 0.3 * rng.standard_normal(10)
    w = _weights(dev, sd=0.3, precision=np.full(10, 1e4))
    assert np.all(w > 0.98)


def test_groups_that_may_all_be_alike_lean_non_centred():
    # the groups' estimates agree within their standard errors (0.1): the spread may be near 0, the funnel's neck
    rng = np.random.default_rng(2)
    precision = np.full(10, 100.0)
    own = rng.standard_normal(10) / np.sqrt(precision)
    sd = 0.05
    shrink = sd**2 * precision / (1 + sd**2 * precision)
    w = _weights(own * shrink, sd=sd, precision=precision)
    assert np.all(w < 0.5)
    # the same groups, pinned down 100 times more tightly and as far apart, lean centred
    w_tight = _weights(own * shrink, sd=sd, precision=precision * 100)
    assert np.all(w_tight > w)


def test_a_group_its_runs_say_nothing_about_is_non_centred_and_does_not_inform_the_spread():
    precision = np.array([1e4, 1e4, 1e4, 0.0])
    w = _weights([0.2, -0.3, 0.1, 0.0], sd=0.3, precision=precision)
    assert w[3] == 0.0 and np.all(w[:3] > 0.9)
    # with no group informative, every weight is 0
    assert np.all(_weights([0.0, 0.0], sd=0.3, precision=[0.0, 0.0]) == 0.0)


def test_weights_lie_in_the_unit_interval_and_do_not_depend_on_the_draws_beyond_monte_carlo_error():
    rng = np.random.default_rng(3)
    dev, precision = 0.1 * rng.standard_normal(6), 10 ** rng.uniform(1, 4, 6)
    w = [_weights(dev, 0.1, precision, seed=s) for s in range(5)]
    assert np.all((np.array(w) >= 0) & (np.array(w) <= 1))
    # 4000 importance-weighted draws: the spread of w over 20 seeds of the draws, measured, is 0.005
    assert np.ptp(np.array(w), axis=0).max() < 0.03


def test_marginal_variances_invert_each_groups_block_of_the_hessian():
    # a Gaussian log density with a known precision matrix: two groups of two offsets, coupled within a group,
    # plus one unrelated coordinate; the marginal variance within a group is the inverse block's diagonal
    precision = np.zeros((5, 5))
    precision[:2, :2] = [[5.0, 2.0], [2.0, 3.0]]
    precision[2:4, 2:4] = [[40.0, -10.0], [-10.0, 4.0]]
    precision[4, 4] = 7.0
    precision[0, 4] = precision[4, 0] = 0.5  # coupling outside the groups' blocks is left out

    def grad(x):
        return -precision @ x

    index = np.array([[0, 1], [2, 3]])  # index[g] = group g's offsets (one per pooled quantity)
    out = _offset_marginal_variances(np.zeros(5), index, grad, step=1e-4)
    expect = np.array([np.diag(np.linalg.inv(precision[:2, :2])), np.diag(np.linalg.inv(precision[2:4, 2:4]))])
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    # a direction the density does not curve in (eigenvalue below 1, the offset's own prior) reads as prior-wide
    flat = np.diag([0.0, 2.0])
    out = _offset_marginal_variances(np.zeros(2), np.array([[0, 1]]), lambda x: -flat @ x, step=1e-4)
    np.testing.assert_allclose(out, [[1.0, 0.5]])
