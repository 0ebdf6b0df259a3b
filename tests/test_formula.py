"""Formula strings: the AST whitelist, evaluation on both backends, rendering, formula laws."""

import builtins
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayescale as bs
import bayescale.core.formula
import bayescale.core.laws
from bayescale.base.errors import SpecError
from bayescale.core.formula import MAX_DEPTH, MAX_LENGTH, parse_formula
from bayescale.core.formulalaw import formula_law
from bayescale.core.laws import NUMPY, PYTENSOR

NAMES = ["N", "D", "E", "A", "B", "alpha", "beta"]
CHINCHILLA = "E + A / N**alpha + B / D**beta"
CHINCHILLA_PARAMS = {
    "E": {"kind": "irreducible"},
    "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]},
    "B": {"kind": "coefficient", "scales_with": ["D", "beta"]},
    "alpha": {"kind": "exponent"},
    "beta": {"kind": "exponent"},
}


def caret_column(message):
    """Column the caret line of a refusal points at, relative to the formula line above it."""
    lines = message.splitlines()
    carets = [i for i, line in enumerate(lines) if set(line.strip()) == {"^"}]
    assert carets, f"no caret line in {message!r}"
    shown, pointer = lines[carets[-1] - 1], lines[carets[-1]]
    return shown, pointer.index("^") - 4, len(pointer.strip())


# (formula, offending token, words the message must contain)
REFUSED = [
    ("E + N.__class__", "N.__class__", "attribute access"),
    ("E + A.real", "A.real", "attribute access"),
    ("E + open(N)", "open", "unknown function 'open'"),
    ("E + eval(N)", "eval", "unknown function 'eval'"),
    ("E + __import__(N)", "__import__", "unknown function '__import__'"),
    ("E + getattr(N, A)", "getattr", "unknown function 'getattr'"),
    ("__builtins__ + E", "__builtins__", "names starting with '_'"),
    ("E + __class__", "__class__", "names starting with '_'"),
    ("E + _secret", "_secret", "names starting with '_'"),
    ("E + (lambda: N)()", "lambda: N", "call of 'lambda: N'"),
    ("lambda N: N", "lambda N: N", "lambda"),
    ("E + [x for x in N]", "[x for x in N]", "comprehensions"),
    ("E + sum(x for x in N)", "sum", "unknown function 'sum'"),
    ("E + {x: 1 for x in N}", "{x: 1 for x in N}", "comprehensions"),
    ("E + N[0]", "N[0]", "subscripts"),
    ("E + 'text'", "'text'", "only real numbers"),
    ("E + True", "True", "only real numbers"),
    ("E + 1j", "1j", "only real numbers"),
    ("E + 1e400", "1e400", "not finite"),
    ("E + N < D", "E + N < D", "comparisons"),
    ("E + (N if A else D)", "N if A else D", "conditional"),
    ("E + (x := N)", "x := N", "assignment"),
    ("E + f'{N}'", "f'{N}'", "f-strings"),
    ("E + exp(*N)", "*N", "starred"),
    ("E + exp(x=N)", "N", "keyword arguments"),
    ("E + exp(N, D)", "exp(N, D)", "takes 1 argument"),
    ("E + N // D", "N // D", "operator"),
    ("E + N @ D", "N @ D", "operator"),
    ("E + (N and D)", "N and D", "boolean"),
    ("E + foo", "foo", "'foo' is not declared"),
    ("E + exp", "exp", "must be called"),
]


@pytest.mark.parametrize("text, token, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_formulas_point_at_the_offending_token(text, token, words):
    with pytest.raises(SpecError) as info:
        parse_formula(text, NAMES)
    msg = str(info.value)
    assert words in msg
    assert f"column {text.index(token)}" in msg
    shown, col, width = caret_column(msg)
    assert shown.strip() == text
    assert col == text.index(token) and width == len(token), msg


@pytest.mark.parametrize("text", ["import os", "E; import os", "E = 1", "exec('x')\n", "E +", "def f(): pass"])
def test_statements_and_syntax_errors_are_refused(text):
    with pytest.raises(SpecError, match="refused"):
        parse_formula(text, NAMES)


def test_very_long_and_deeply_nested_inputs_are_refused():
    with pytest.raises(SpecError, match=f"more than the limit of {MAX_LENGTH}"):
        parse_formula("E + " + " + ".join(["A"] * 1000), NAMES)
    with pytest.raises(SpecError, match="nested deeper"):
        parse_formula("-" * (MAX_DEPTH + 5) + "N", NAMES)
    def balanced(n):  # a shallow tree with many nodes
        return "N" if n == 1 else f"({balanced(n // 2)}+{balanced(n - n // 2)})"

    assert len(balanced(300)) < MAX_LENGTH
    with pytest.raises(SpecError, match="more than 500 syntax nodes"):
        parse_formula(balanced(300), NAMES)
    assert parse_formula(" + ".join(["N"] * 60), NAMES).names == ("N",)  # a long flat sum is fine
    # a huge parenthesis nest is a syntax error of the parser, not a crash
    with pytest.raises(SpecError, match="refused"):
        parse_formula("(" * 300 + "N" + ")" * 300, NAMES)


def test_formula_is_never_executed(monkeypatch, tmp_path):
    """Parsing and evaluating never reach eval/exec or compile to code, and a refused payload has no effect."""
    import ast

    real_compile = builtins.compile

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):  # ast.parse compiles to a tree only
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compile to code called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)
    f = parse_formula(CHINCHILLA, NAMES)
    value = f.evaluate({"N": 1e9, "D": 2e10, "E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37})
    assert np.isfinite(value)
    target = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {target}')"
    with pytest.raises(SpecError):
        parse_formula(payload, NAMES)
    assert not target.exists()


def test_declared_names_are_checked():
    with pytest.raises(SpecError, match="cannot be a formula name"):
        parse_formula("E", ["E", "__x"])
    with pytest.raises(SpecError, match="cannot be a formula name"):
        parse_formula("E", ["E", "exp"])
    with pytest.raises(SpecError, match="must be a string"):
        parse_formula(3.0, NAMES)
    with pytest.raises(SpecError, match="empty"):
        parse_formula("   ", NAMES)


def test_names_in_order_of_first_use_and_equality_by_tree():
    f = parse_formula(CHINCHILLA, NAMES)
    assert f.names == ("E", "A", "N", "alpha", "B", "D", "beta")
    g = parse_formula("((E) + (A / (N ** alpha))) + B/D**beta", NAMES)
    assert f == g and hash(f) == hash(g)
    assert f != parse_formula("E + A / N**alpha + B / D**alpha", NAMES)


# ---------------------------------------------------------------- evaluation
EVAL_CASES = [
    CHINCHILLA,
    "E + A / N**alpha * exp(-D / 1e12) + log(1 + B / D**beta)",
    "maximum(E, 1.5) + minimum(A / N**alpha, B / D**beta) - -0.25",
    "(E + A * N**-alpha)**(1 / 2) + 2**-beta",
]


@pytest.mark.parametrize("text", EVAL_CASES)
def test_same_values_on_numpy_and_pytensor(text):
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    values = {"N": 10 ** rng.uniform(7, 11, 25), "D": 10 ** rng.uniform(9, 13, 25), "E": 1.8, "A": 480.0,
              "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    f = parse_formula(text, NAMES)
    expected = f.evaluate(values, NUMPY)
    symbols = {k: pt.dvector(k) if np.ndim(v) else pt.dscalar(k) for k, v in values.items()}
    graph = f.evaluate(symbols, PYTENSOR)
    fn = pytensor.function(list(symbols.values()), graph, on_unused_input="ignore")
    got = fn(*[np.asarray(v, dtype="float64") for v in values.values()])
    assert graph.dtype == "float64"
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    # and the same as Python's own arithmetic on one point (the parser keeps Python's precedence)
    point = {k: (v[3] if np.ndim(v) else v) for k, v in values.items()}
    ref = {"exp": np.exp, "log": np.log, "minimum": min, "maximum": max}
    py = eval(text, {"__builtins__": {}}, {**ref, **point})  # trusted test constant, not user input
    assert f.evaluate(point) == pytest.approx(py, rel=1e-13)


def test_missing_values_are_named():
    with pytest.raises(SpecError, match=r"needs value\(s\) for \['beta'\]"):
        parse_formula(CHINCHILLA, NAMES).evaluate({"N": 1, "D": 1, "E": 1, "A": 1, "B": 1, "alpha": 1})


# ------------------------------------------------------------------ rendering
def test_plain_text_and_latex():
    f = parse_formula(CHINCHILLA, NAMES)
    assert f.to_text() == "E + A / N**alpha + B / D**beta"
    assert f.to_latex() == r"E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}"
    g = parse_formula("(N_c / N)**(alpha_N / alpha_D) - -(D_c / D) * exp(-E)", ["N", "D", "N_c", "D_c", "alpha_N",
                                                                             "alpha_D", "E"])
    assert g.to_text() == "(N_c / N)**(alpha_N / alpha_D) - -(D_c / D) * exp(-E)"
    assert g.to_latex() == (r"\left(\frac{N_{c}}{N}\right)^{\frac{\alpha_{N}}{\alpha_{D}}} - "
                            r"\left(-\frac{D_{c}}{D} \, \exp\left(-E\right)\right)")
    h = parse_formula("maximum(E, 2) + log(U0 - D)**2", ["E", "U0", "D"])
    assert h.to_latex() == r"\max\left(E, 2\right) + \log\left(\mathrm{U0} - D\right)^{2}"
    assert str(h) == "maximum(E, 2) + log(U0 - D)**2"


LEAVES = st.sampled_from(["N", "D", "E", "alpha"]) | st.sampled_from([0.5, 2.0, 3.0, 1e-5, 1e20])


def _trees(children):
    binary = st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), children, children).map(
        lambda t: f"({t[1]}) {t[0]} ({t[2]})")
    unary = children.map(lambda c: f"-({c})")
    call1 = st.tuples(st.sampled_from(["exp", "log"]), children).map(lambda t: f"{t[0]}({t[1]})")
    call2 = st.tuples(st.sampled_from(["minimum", "maximum"]), children, children).map(
        lambda t: f"{t[0]}({t[1]}, {t[2]})")
    return binary | unary | call1 | call2


@settings(max_examples=200, deadline=None)
@given(st.recursive(LEAVES.map(str), _trees, max_leaves=12))
def test_plain_text_reparses_to_the_same_tree(text):
    """Minimal parentheses must keep the tree: precedence, associativity, unary minus and powers."""
    try:
        f = parse_formula(text, ["N", "D", "E", "alpha"])
    except SpecError as exc:  # a constant part such as log(-(0.5)) or (2) ** (1e9) is refused
        assert "is not a finite number" in str(exc)
        return
    again = parse_formula(f.to_text(), ["N", "D", "E", "alpha"])
    assert again == f
    assert len(f.to_text()) <= len(text)
    assert f.to_latex()  # renders without error


# --------------------------------------------------------------- formula laws
def test_formula_law_matches_the_shipped_law():
    law = formula_law(CHINCHILLA, inputs=["N", "D"], parameters=CHINCHILLA_PARAMS, name="chinchilla_formula")
    shipped = bs.get_law("chinchilla")
    rng = np.random.default_rng(1)
    x = {"N": 10 ** rng.uniform(7, 12, 50), "D": 10 ** rng.uniform(9, 14, 50)}
    p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    np.testing.assert_allclose(law.loss(x, p), shipped.loss(x, p), rtol=1e-12)
    assert law.scalings == {"A": ("N", "alpha"), "B": ("D", "beta")}
    assert law.formula == "E + A / N**alpha + B / D**beta"
    again = formula_law(CHINCHILLA, inputs=["N", "D"], parameters=CHINCHILLA_PARAMS, name="chinchilla_formula")
    assert again.function == law.function and hash(again.function) == hash(law.function)  # one compiled graph
    assert law.to_dict()["formula"] == CHINCHILLA


@pytest.mark.parametrize("change, words", [
    (dict(parameters={**CHINCHILLA_PARAMS, "A": {"kind": "coefficient", "scales_with": ["N", "beta"]}}),
     "do not leave the loss unchanged"),
    (dict(parameters={**CHINCHILLA_PARAMS, "A": {"kind": "coefficient"}}), "declare how it scales"),
    (dict(parameters={**CHINCHILLA_PARAMS, "alpha": {"kind": "slope"}}), "kind 'slope' is not one of"),
    (dict(parameters={**CHINCHILLA_PARAMS, "alpha": {"kind": "exponent", "prior": 1}}), "unknown key"),
    (dict(parameters={**CHINCHILLA_PARAMS, "gamma": {"kind": "exponent"}}), "does not use declared name"),
    (dict(inputs=["N", "D", "U"]), "does not use declared name"),
    (dict(inputs=["N", "T"]), "unknown input"),
    (dict(inputs="ND"), "inputs must be a list"),
    (dict(parameters={**CHINCHILLA_PARAMS, "N": {"kind": "exponent"}}), "clash with input names"),
    (dict(formula="E + A / N**alpha + B / D**beta + os.system"), "attribute access"),
    (dict(name="my law"), "identifier"),
])
def test_formula_law_errors(change, words):
    args = dict(formula=CHINCHILLA, inputs=["N", "D"], parameters=CHINCHILLA_PARAMS, name="x")
    args.update(change)
    with pytest.raises(SpecError, match=re.escape(words)):
        formula_law(args.pop("formula"), **args)


def test_a_malformed_number_is_one_error_and_no_python_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python's SyntaxWarning would escape before our SpecError
        with pytest.raises(SpecError, match="column 2: syntax error"):
            parse_formula("1e9alpha", ["alpha"])


# --------------------------------------------------------------- constants and names that cannot work
@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.recursive(st.sampled_from(["0", "1", "2", "9", "0.5", "1e308", "1e-300", "N"]),
                    _trees, max_leaves=8))
def test_a_constant_part_that_is_not_finite_is_refused_at_parse_time(text):
    """1/0, 9**9**9, exp(1000), log(0): refused when the formula is read, never at fit time."""
    names = ["N", "D", "E", "alpha"]
    try:
        f = parse_formula(text, names)
    except SpecError as exc:
        assert str(exc).startswith("formula refused")
        return
    with np.errstate(all="ignore"):
        sub_values = []

        def walk(tree):  # every part without a name evaluates to a finite number
            if tree[0] not in ("num", "name") and not any(True for _ in bayescale.core.formula._names(tree)):
                sub_values.append(float(bayescale.core.formula._evaluate(tree, {}, bayescale.core.laws.NUMPY)))
            for child in (tree[2:] if tree[0] == "call" else tree[1:]) if tree[0] not in ("num", "name") else ():
                walk(child)

        walk(f.tree)
    assert all(np.isfinite(sub_values))


@pytest.mark.parametrize("constant", ["1/0", "9**9**9", "exp(1000)", "log(0)", "0**-1", "(-1)**0.5", "1e45**9"])
def test_named_non_finite_constants_are_refused(constant):
    with pytest.raises(SpecError, match=r"constant .* is not a finite number"):
        parse_formula(f"E + {constant} * N", ["N", "E"])


@pytest.mark.parametrize("name, why", [("lambda", "keyword"), ("None", "keyword"), ("sum", "builtin"),
                                       ("print", "builtin"), ("sigma", "noise parameter"), ("nu", "noise parameter"),
                                       ("E_pop", "partial pooling"), ("A_group_sd", "partial pooling")])
def test_parameter_names_that_clash_are_refused_naming_them(name, why):
    params = {"E": {"kind": "irreducible"}, "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]},
              "alpha": {"kind": "exponent"}}
    params[name] = params.pop("E")
    with pytest.raises(SpecError, match=f"parameter name '{name}' .*{why}"):
        formula_law(f"{name} + A / N**alpha", inputs=["N"], parameters=params)
