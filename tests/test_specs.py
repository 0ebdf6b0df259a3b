"""TOML model specifications: every shipped spec loads, fits, round-trips; bad specs are refused clearly."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.base.errors import SpecError
from bayescale.analysis.hierarchy import simulate_groups
from bayescale.fitting.model import load_spec, model_from_dict
from bayescale.core.specs import available_specs, read_spec, spec_path, to_toml

SPECS = available_specs()

# Parameters to simulate each shipped law from (published values where there are some).
TRUTH = {
    "chinchilla": dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37),
    "chinchilla_tied": dict(E=1.8, A=480.0, B=2100.0, alpha=0.35),
    "power_n": dict(E=1.8, A=480.0, alpha=0.35),
    "power_d": dict(E=1.8, B=2100.0, beta=0.37),
    "power_c": dict(E=1.8, K=1000.0, gamma=0.15),
    "kaplan": dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095),  # Kaplan et al. 2020
    "data_constrained": dict(E=1.87, A=520.8, B=1487.7, alpha=0.3527, beta=0.3527, R_D=15.39, R_N=5.31),
}
N_RUNS = 40
SIGMA = 0.01


def test_shipped_specs_are_found():
    assert {"chinchilla", "chinchilla_tied", "chinchilla_besiroglu2024", "chinchilla_mixtures", "kaplan",
            "power_n", "power_d", "power_c", "data_constrained", "data_constrained_muennighoff2023"} <= set(SPECS)
    # every law of the core issue has a spec
    assert set(bs.available_laws()) <= {load_spec(s).law.name for s in SPECS}


@pytest.mark.parametrize("name", SPECS)
def test_spec_loads_by_name_and_path_with_its_documentation(name):
    model = bs.ScalingModel.from_spec(name)
    assert model.name == name
    assert model.description and model.references
    assert bs.ScalingModel.from_spec(str(spec_path(name))).to_dict() == model.to_dict()
    # writing the spec back as TOML and reading it gives the same model
    again = model_from_dict(__import__("tomllib").loads(to_toml(model)))
    assert again.to_dict() == model.to_dict()
    assert str(model).startswith("ScalingModel")


def _synthetic(model, seed=0):
    """Runs simulated from TRUTH for the spec's law; 8 groups when the spec pools by group."""
    law = model.law
    p = TRUTH[law.name]
    if model.hierarchical:
        frame = simulate_groups([5] * 8, {**p, "E": 1.8 * np.exp(0.1 * np.arange(-4, 4) / 4)}, law=law,
                                sigma=SIGMA, seed=seed)
        truth = law.loss({"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()},
                         {**p, "E": 1.8 * np.exp(0.1 * (frame["group"].str[1:].astype(int).to_numpy() - 4) / 4)})
        return frame, truth
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7.5, 10.5, N_RUNS)
    D = N * 10 ** rng.uniform(0.3, 2.3, N_RUNS)
    x = {"N": N, "D": D, "C": 6 * N * D, "U": D / 10 ** rng.uniform(0.0, 1.3, N_RUNS)}  # up to 20 epochs
    truth = law.loss(x, p)
    frame = pd.DataFrame({k: x[k] for k in law.inputs} | {"loss": truth * np.exp(SIGMA * rng.standard_normal(N_RUNS))})
    return frame, truth


@pytest.mark.parametrize("name", SPECS)
def test_spec_fits_round_trips_and_predicts_identically(name, tmp_path):
    model = bs.ScalingModel.from_spec(name)
    runs, truth = _synthetic(model)
    with warnings.catch_warnings():  # short chains: a ConvergenceWarning about ESS is expected
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        fit = model.fit(runs, draws=150, tune=250, chains=2, random_seed=3)
    # the fitted curve passes through the truth: 40 runs with 1% noise pin the curve at the design points
    # to well under the noise level, so the median relative error must be below 1%
    pred = fit.predict(runs.drop(columns="loss"))
    assert np.median(np.abs(pred["loss_median"] / truth - 1)) < 0.01
    # the file carries the spec; loading rebuilds the same model and predicts identically
    path = tmp_path / f"{name}.nc"
    fit.save(path)
    assert json.loads(fit.idata.attrs["model_spec"]) == model.to_dict()
    loaded = bs.load(path)
    assert loaded.model.to_dict() == model.to_dict()
    assert loaded.model.law == model.law
    new = runs.drop(columns="loss").iloc[:5]
    if model.hierarchical:
        new = pd.concat([new, new.iloc[:2].assign(group="unseen")], ignore_index=True)
    pd.testing.assert_frame_equal(loaded.predict(new, random_seed=7), fit.predict(new, random_seed=7))


def test_fit_of_a_custom_formula_spec_file_round_trips(tmp_path):
    """A formula law from a user's file: the saved fit rebuilds it without the file."""
    path = tmp_path / "my_tied.toml"
    text = spec_path("chinchilla_tied").read_text().replace('name = "chinchilla_tied"', 'name = "my_tied"')
    path.write_text(text)
    model = load_spec(path)
    assert model.name == "my_tied" and model.law.formula == "E + A / N**alpha + B / D**alpha"
    restored = bs.ScalingModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored.law == model.law and restored.law.latex == model.law.latex


PUBLISHED = {
    # spec: {parameter: value}, A and B as (value, exponent, at)
    "chinchilla_besiroglu2024": dict(E=1.817, alpha=0.3478, beta=0.3659, A=(482.0, 0.3478, 1e9),
                                     B=(2085.4, 0.3659, 2e10)),
    "data_constrained_muennighoff2023": dict(E=1.870, alpha=0.3527, beta=0.3527, R_D=15.39, R_N=5.31,
                                             A=(520.8, 0.3527, 1e9), B=(1487.7, 0.3527, 2e10)),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_prior_presets_are_centred_on_the_published_fits(name):
    priors = load_spec(name).priors
    for param, value in PUBLISHED[name].items():
        prior = priors[param]
        if isinstance(value, tuple):
            coef, expo, at = value
            assert prior.at == at
            centre = math.log(coef) - expo * math.log(at)  # log of the term's size at `at`
        else:
            centre = math.log(value)
        assert prior.mu == pytest.approx(centre, abs=6e-4), param  # the files round mu to 4 decimals
    assert "Besiroglu" in " ".join(load_spec("chinchilla_besiroglu2024").references)


# ------------------------------------------------------------------ bad specs
def _write(tmp_path, text):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


BAD = [
    ('law = "chinchilla"\nprior = {}\n', "unknown key(s) ['prior']; valid keys: name"),
    ('likelihood = "normal"\n', "a spec needs a 'law'"),
    ('law = "chinchila"\n', "chinchila"),
    ('law = 3\n', "'law' must be a law name or a table"),
    ('law = "chinchilla"\nlikelihood = "huber"\n', "unknown likelihood 'huber'; valid: student_t, normal"),
    ('law = "chinchilla"\n[priors]\nalpha = { family = "Cauchy", mu = 0.0 }\n', "prior of 'alpha'"),
    ('law = "chinchilla"\n[priors]\ngamma = { family = "LogNormal", mu = 0.0, sigma = 1.0 }\n',
     "no parameter 'gamma' to set a prior on"),
    ('law = "chinchilla"\n[pooling]\nE = "pooled"\n', "pooling of 'E' is 'pooled'"),
    ('law = "chinchilla"\n[pooling]\nsigma = "partial"\n', "'sigma' is a likelihood parameter"),
    ('law = "chinchilla"\nreferences = "Hoffmann"\n', "'references' must be a list of strings"),
    ('law = "chinchilla"\nreferences = 3\n', "'references' must be a list of strings"),
    ('law = "chinchilla"\nlikelihood = ["normal"]\n', "unknown likelihood ['normal']"),
    ('[law]\nformula = "E"\ninputs = 3\n[law.parameters]\nE = { kind = "irreducible" }\n', "inputs must be a list"),
    ('[law]\nformula = "E + A / N**alpha"\n', "[law] with a formula needs ['inputs', 'parameters']"),
    ('[law]\nformula = "E + A / N**alpha"\ninputs = ["N"]\nsize = 3\n', "[law] has unknown key(s) ['size']"),
    ('[law]\nformula = "E + N.__class__"\ninputs = ["N"]\n[law.parameters]\nE = { kind = "irreducible" }\n',
     "attribute access not allowed"),
    ('[law]\nformula = "E + A / N**alpha"\ninputs = ["N"]\n'
     '[law.parameters]\nE = { kind = "irreducible" }\nA = { kind = "coefficient", scales_with = ["N", 0.5] }\n'
     'alpha = { kind = "exponent" }\n', "do not leave the loss unchanged"),
    ('law = "chinchilla"\nname = [1]\n', "'name' must be text"),
    *[(f'[law]\nformula = "E + A / N**alpha + {c}"\ninputs = ["N"]\n[law.parameters]\nE = {{ kind = "irreducible" }}\n'
       'A = { kind = "coefficient", scales_with = ["N", "alpha"] }\nalpha = { kind = "exponent" }\n',
       f"constant '{c}' is not a finite number") for c in ("1/0", "9**9**9", "exp(1000)")],
    *[(f'[law]\nformula = "{p} + A / N**alpha"\ninputs = ["N"]\n[law.parameters]\n{p} = {{ kind = "irreducible" }}\n'
       'A = { kind = "coefficient", scales_with = ["N", "alpha"] }\nalpha = { kind = "exponent" }\n',
       f"parameter name '{p}' is a Python {why}") for p, why in (("lambda", "keyword"), ("sum", "builtin"))],
    ('law = "chinchilla"\nlikelihood = \n', "is not valid TOML"),
]


@pytest.mark.parametrize("text, words", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_specs_are_refused_naming_the_file_and_problem(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_refused_formula_in_a_file_shows_the_token():
    with pytest.raises(SpecError) as info:
        model_from_dict({"law": {"formula": "E + A / N**alpha + __import__('os')", "inputs": ["N"],
                                 "parameters": {"E": {"kind": "irreducible"}, "alpha": {"kind": "exponent"},
                                                "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]}}}},
                        source="my.toml")
    msg = str(info.value)
    assert msg.startswith("my.toml: formula refused at column 19: unknown function '__import__'")
    assert msg.splitlines()[-1] == " " * (4 + 19) + "^" * len("__import__")


def test_unknown_spec_names_and_paths():
    with pytest.raises(SpecError, match="no spec named 'chinchila'; shipped specs: .*chinchilla"):
        load_spec("chinchila")
    with pytest.raises(SpecError, match="no spec file at"):
        load_spec("missing/dir/model.toml")
    with pytest.raises(SpecError, match="a spec is a shipped name or a path"):
        spec_path(3)


def test_read_spec_defaults_the_name_to_the_file_stem(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('law = "power_n"\n')
    assert read_spec(path)["name"] == "mine"
    assert load_spec(path).name == "mine"
