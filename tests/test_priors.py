import numpy as np
import pytest

from bayescale.base.errors import SpecError
from bayescale.core.priors import (FAMILIES, DataScale, Gamma, HalfNormal, LogNormal, Normal, StudentT, Uniform,
                              default_prior, prior_from_dict)

EXAMPLES = [Normal(0.5, 2.0), LogNormal(0.0, 1.0), LogNormal(1.0, 0.5, at=1e9), HalfNormal(0.3),
            Gamma(2.0, 0.1), StudentT(3.0, 0.0, 1.0), Uniform(0.0, 2.0), FAMILIES["Exponential"](4.0)]


@pytest.mark.parametrize("prior", EXAMPLES, ids=str)
def test_round_trip_through_plain_data(prior):
    assert prior_from_dict(prior.to_dict()) == prior


@pytest.mark.parametrize("prior", EXAMPLES, ids=str)
def test_numpy_draws_match_the_family_mean(prior):
    import scipy.stats as st

    ref = {
        "Normal": lambda p: st.norm(p.mu, p.sigma),
        "LogNormal": lambda p: st.lognorm(p.sigma, scale=np.exp(p.mu)),
        "HalfNormal": lambda p: st.halfnorm(scale=p.sigma),
        "Gamma": lambda p: st.gamma(p.alpha, scale=1 / p.beta),
        "StudentT": lambda p: st.t(p.nu, p.mu, p.sigma),
        "Uniform": lambda p: st.uniform(p.lower, p.upper - p.lower),
        "Exponential": lambda p: st.expon(scale=1 / p.lam),
    }[prior.family](prior)
    x = prior.sample(np.random.default_rng(1), 20000)
    # Compare medians (StudentT(3) has a heavy tail): the sample median's sd is about
    # 1.25 * sd / sqrt(n); 5 of those is a test that fails only on a wrong parameterisation.
    spread = ref.ppf(0.75) - ref.ppf(0.25)
    assert abs(np.median(x) - ref.median()) < 5 * 0.93 * spread / np.sqrt(len(x))


def test_bad_hyperparameters_are_refused():
    with pytest.raises(SpecError, match="sigma must be > 0"):
        Normal(0.0, -1.0)
    with pytest.raises(SpecError, match="must be a number"):
        LogNormal("0", 1.0)
    with pytest.raises(SpecError, match="finite"):
        Gamma(float("nan"), 1.0)
    with pytest.raises(SpecError, match="upper"):
        Uniform(2.0, 1.0)
    with pytest.raises(SpecError, match="at must be a positive number"):
        LogNormal(0.0, 1.0, at=-5.0)


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(SpecError, match="valid families: Normal, LogNormal"):
        prior_from_dict({"family": "Cauchy", "beta": 1.0})
    with pytest.raises(SpecError, match="no argument"):
        prior_from_dict({"family": "Normal", "mu": 0.0, "scale": 1.0})


def test_defaults_are_scaled_to_the_data():
    s = DataScale({"N": 2e9, "D": 4e10}, min_loss=2.0, median_loss=3.0, sd_log_loss=0.2)
    e = default_prior("irreducible", s)
    assert np.exp(e.mu) == pytest.approx(1.0)  # half the lowest loss
    a = default_prior("coefficient", s, ("N", "alpha"))
    assert a.at == 2e9 and np.exp(a.mu) == pytest.approx(0.75)
    assert default_prior("sigma", s).sigma == pytest.approx(0.2)
    with pytest.raises(SpecError, match="unknown parameter kind"):
        default_prior("bogus", s)
