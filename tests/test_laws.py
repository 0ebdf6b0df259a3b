import numpy as np
import pytensor.tensor as pt
import pytest

import bayescale as bs
from bayescale.base.errors import SpecError
from bayescale.core.laws import NUMPY, PYTENSOR, law

RNG = np.random.default_rng(0)

PARAMS = {
    "chinchilla": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    "kaplan": dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095),
    "power_n": dict(E=1.7, A=400.0, alpha=0.34),
    "power_d": dict(E=1.7, B=410.0, beta=0.28),
    "power_c": dict(E=1.7, K=2000.0, gamma=0.15),
    "data_constrained": dict(E=1.87, A=520.8, B=1487.7, alpha=0.3527, beta=0.3527, R_D=15.39, R_N=5.31),
}


def _inputs(names, n=7):
    out = {k: 10 ** RNG.uniform(7, 12, n) for k in names}
    if "U" in out:
        out["U"] = out["D"] / 10 ** RNG.uniform(0, 1.5, n)
    return out


def test_every_shipped_law_has_reference_parameters():
    assert set(bs.available_laws()) == set(PARAMS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_numpy_and_pytensor_agree(name):
    law_ = bs.get_law(name)
    x = _inputs(law_.inputs)
    sym = {k: pt.dvector(k) for k in law_.inputs}
    out = law_.log_loss(sym, PARAMS[name], PYTENSOR)
    got = out.eval({sym[k]: x[k] for k in law_.inputs})
    np.testing.assert_allclose(got, law_.log_loss(x, PARAMS[name], NUMPY), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_declared_scalings_hold(name):
    bs.get_law(name).check_scaling()


def test_wrong_scaling_declaration_is_caught():
    @law(inputs=["N"], kinds={"E": ("irreducible", ""), "A": ("coefficient", ""), "alpha": ("exponent", "")},
         formula="E + A/N**alpha", scales={"A": ("N", 1.0)}, register=False)
    def wrong(xp, N, E, A, alpha):
        return xp.logsumexp([xp.log(E) + 0.0 * N, xp.log(A) - alpha * xp.log(N)])

    with pytest.raises(SpecError, match="do not leave the loss unchanged"):
        wrong.check_scaling()


def test_chinchilla_matches_direct_formula():
    p = PARAMS["chinchilla"]
    N, D = 10 ** RNG.uniform(6, 12, 50), 10 ** RNG.uniform(8, 13, 50)
    direct = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    np.testing.assert_allclose(bs.get_law("chinchilla").loss({"N": N, "D": D}, p), direct, rtol=1e-13)


def test_kaplan_matches_direct_formula():
    p = PARAMS["kaplan"]
    N, D = 10 ** RNG.uniform(6, 12, 50), 10 ** RNG.uniform(8, 13, 50)
    direct = ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    np.testing.assert_allclose(bs.get_law("kaplan").loss({"N": N, "D": D}, p), direct, rtol=1e-12)


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    p = PARAMS["data_constrained"]
    chin = {k: p[k] for k in ("E", "A", "B", "alpha", "beta")}
    N, D = np.array([1e8, 1e9]), np.array([1e11, 1e12])  # small N: no excess parameters
    dc = bs.get_law("data_constrained").loss({"N": N, "D": D, "U": D}, p)
    np.testing.assert_allclose(dc, bs.get_law("chinchilla").loss({"N": N, "D": D}, chin), rtol=1e-12)


def test_repeated_tokens_are_worth_less_than_fresh_ones():
    p = PARAMS["data_constrained"]
    law_ = bs.get_law("data_constrained")
    fresh = law_.loss({"N": 1e9, "D": 1e11, "U": 1e11}, p)
    repeated = law_.loss({"N": 1e9, "D": 1e11, "U": 1e10}, p)  # 10 epochs of 1e10 unique tokens
    one_epoch = law_.loss({"N": 1e9, "D": 1e10, "U": 1e10}, p)
    assert fresh < repeated < one_epoch


def test_extreme_inputs_stay_finite_and_close_to_E():
    p = PARAMS["chinchilla"]
    N = np.array([1e3, 1e14, 1e14])
    D = np.array([1e3, 1e30 / 6e14, 1e30])
    loss = bs.get_law("chinchilla").loss({"N": N, "D": D}, p)
    assert np.all(np.isfinite(loss))
    # Near the floor the law is E plus two tiny terms; log-sum-exp must keep their digits.
    expected = p["E"] + p["A"] / 1e14 ** p["alpha"] + p["B"] / 1e30 ** p["beta"]
    assert loss[2] == pytest.approx(expected, rel=1e-13)


def test_unknown_law_lists_valid_names():
    with pytest.raises(SpecError, match="available laws: chinchilla"):
        bs.get_law("chinchila")


def test_missing_parameter_is_named():
    with pytest.raises(SpecError, match=r"\['beta'\]"):
        bs.get_law("chinchilla").log_loss({"N": 1e9, "D": 1e10}, dict(E=1, A=1, B=1, alpha=0.3))


def test_law_function_must_take_xp_first():
    with pytest.raises(SpecError, match="'xp' as its first argument"):
        law(inputs=["N"], kinds={"E": ("irreducible", "")}, formula="E", register=False)(lambda N, E: E)


def test_str_lists_parameters():
    text = str(bs.get_law("chinchilla"))
    assert "E + A / N**alpha + B / D**beta" in text and "alpha" in text
