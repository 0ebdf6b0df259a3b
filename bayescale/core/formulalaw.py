"""A scaling law from a formula in a spec file: :func:`formula_law` names its inputs and parameters,
checks them, and evaluates the parsed formula (:mod:`bayescale.core.formula`) on NumPy and PyTensor alike.
"""

from __future__ import annotations

import builtins
import keyword
import math
from dataclasses import dataclass, field
from typing import Mapping

from ..base.errors import SpecError
from .laws import Law, Parameter
from .formula import FUNCTIONS, Formula, INPUTS, KINDS, parse_formula

__all__ = ["formula_law", "FormulaLaw", "RESERVED_NAMES", "RESERVED_SUFFIXES", "parameter_name_problem"]


@dataclass(frozen=True)
class _FormulaFunction:
    """Log loss of a formula law; equal (and hashable) by formula, so graphs are shared."""

    formula: Formula

    def __call__(self, xp, **values):
        return xp.log(self.formula.evaluate(values, xp))


@dataclass(frozen=True)
class FormulaLaw(Law):
    """A :class:`~bayescale.core.laws.Law` defined by a formula string (see :func:`formula_law`)."""

    spec: tuple = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict:
        """Plain-data form, as in a TOML spec's ``[law]`` table."""
        return _thaw(self.spec)


def _freeze(obj):
    if isinstance(obj, dict):
        return tuple((k, _freeze(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return ("__list__", tuple(_freeze(v) for v in obj))
    return obj


def _thaw(obj):
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__list__":
        return [_thaw(v) for v in obj[1]]
    if isinstance(obj, tuple):
        return {k: _thaw(v) for k, v in obj}
    return obj


def formula_law(formula, *, inputs, parameters, name="custom", description="", references=()) -> Law:
    """Build a scaling law from a formula string.

    Parameters
    ----------
    formula : str
        The predicted loss, e.g. ``"E + A / N**alpha"``. The law's log loss is
        its log.
    inputs : sequence of str
        Run-data columns the formula reads, among ``N``, ``D``, ``C``, ``U``.
    parameters : mapping
        ``{name: {"kind": ..., "description": ..., "scales_with": [input, exponent]}}``
        for every parameter. ``kind`` is one of :data:`KINDS` (all are
        positive). A ``coefficient`` or ``scale`` must declare
        ``scales_with``: ``["N", "alpha"]`` for ``A`` in ``A / N**alpha``,
        ``["N", 1.0]`` for ``N_c`` in ``N_c / N``; the model then centres that
        input internally. The declaration is verified numerically
        (:meth:`~bayescale.core.laws.Law.check_scaling`). Parameters of other kinds
        are not centred.
    name, description : str
    references : sequence of str

    Returns
    -------
    Law

    Examples
    --------
    >>> law = formula_law("E + A / N**alpha", inputs=["N"], parameters={
    ...     "E": {"kind": "irreducible"}, "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]},
    ...     "alpha": {"kind": "exponent"}}, name="my_power_n")
    >>> law.param_names
    ('E', 'A', 'alpha')
    >>> round(float(law.loss({"N": 1e4}, {"E": 1.0, "A": 100.0, "alpha": 0.5})), 6)
    2.0
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"law name must be an identifier such as 'my_law', got {name!r}")
    inputs = _input_list(inputs)
    if not isinstance(parameters, Mapping) or not parameters:
        raise SpecError("a formula law needs a table of parameters, e.g. {'E': {'kind': 'irreducible'}, ...}")
    clash = [p for p in parameters if p in inputs]
    if clash:
        raise SpecError(f"parameter name(s) {clash} clash with input names {list(inputs)}")
    for pname in parameters:
        problem = parameter_name_problem(pname)
        if problem:
            raise SpecError(f"parameter name {pname!r} {problem}; rename it")
    params = []
    for pname, decl in parameters.items():
        params.append(_parameter(pname, decl, inputs, parameters))
    parsed = parse_formula(formula, [*inputs, *parameters])
    unused = [n for n in (*inputs, *parameters) if n not in parsed.names]
    if unused:
        raise SpecError(f"formula {formula!r} does not use declared name(s) {unused}; remove them or use them")
    spec = {"name": name, "formula": formula, "inputs": list(inputs),
            "parameters": {p.name: _param_dict(p) for p in params}}
    if description:
        spec["description"] = description
    if references:
        spec["references"] = list(references)
    law = FormulaLaw(name, _FormulaFunction(parsed), tuple(inputs), tuple(params), parsed.to_text(),
                     parsed.to_latex(), tuple(references), description, spec=_freeze(spec))
    law.check_scaling()
    return law


#: Names the model gives its own variables: the likelihood's noise parameters.
RESERVED_NAMES = ("sigma", "nu", "undertuned_rate", "excess_scale")
#: Suffixes of the hyperparameters of partial pooling (:mod:`bayescale.analysis.hierarchy`).
RESERVED_SUFFIXES = ("_pop", "_group_sd")


def parameter_name_problem(name) -> str | None:
    """Why `name` cannot name a law parameter, or None if it can.

    Refused: non-identifiers and names starting with ``_``, Python keywords
    and builtins (a formula reads like Python, so ``lambda`` or ``sum`` would
    not mean a parameter), the formula functions, the likelihood's ``sigma``
    and ``nu``, and the ``_pop`` / ``_group_sd`` suffixes of partial pooling.

    Examples
    --------
    >>> parameter_name_problem("alpha") is None
    True
    >>> parameter_name_problem("lambda")
    'is a Python keyword'
    >>> parameter_name_problem("sigma")
    "is the likelihood's noise parameter"
    """
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        return "is not a name: use letters, digits and '_', not starting with a digit or '_'"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in FUNCTIONS:
        return f"is a formula function ({', '.join(FUNCTIONS)})"
    if hasattr(builtins, name):
        return "is a Python builtin"
    if name in RESERVED_NAMES:
        return "is the likelihood's noise parameter"
    if name.endswith(RESERVED_SUFFIXES):
        return f"ends with {next(s for s in RESERVED_SUFFIXES if name.endswith(s))!r}, reserved for partial pooling"
    return None


def _input_list(inputs):
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(i, str) for i in inputs):
        raise SpecError(f"inputs must be a list of column names among {', '.join(INPUTS)}, got {inputs!r}")
    inputs = tuple(inputs)
    bad = [i for i in inputs if i not in INPUTS]
    if bad or not inputs:
        raise SpecError(f"unknown input(s) {bad or inputs!r}; a formula law reads run-data columns among "
                        f"{', '.join(INPUTS)}")
    if len(set(inputs)) != len(inputs):
        raise SpecError(f"inputs {list(inputs)} repeat a name")
    return inputs


def _param_dict(p: Parameter) -> dict:
    out = {"kind": p.kind}
    if p.description:
        out["description"] = p.description
    if p.scales_with is not None:
        out["scales_with"] = list(p.scales_with)
    return out


def _parameter(pname, decl, inputs, all_params) -> Parameter:
    valid = ("kind", "description", "scales_with")
    if not isinstance(decl, Mapping):
        raise SpecError(f"parameter {pname!r}: expected a table such as {{kind = \"exponent\"}}, got {decl!r}")
    extra = [k for k in decl if k not in valid]
    if extra:
        raise SpecError(f"parameter {pname!r}: unknown key(s) {extra}; valid: {', '.join(valid)}")
    kind = decl.get("kind")
    if kind not in KINDS:
        raise SpecError(f"parameter {pname!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    description = decl.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"parameter {pname!r}: description must be text")
    sw = decl.get("scales_with")
    if kind in ("coefficient", "scale") and sw is None:
        raise SpecError(f"parameter {pname!r} is a {kind}: declare how it scales, e.g. "
                        f"scales_with = [\"N\", \"alpha\"] for A / N**alpha or [\"N\", 1.0] for N_c / N")
    if sw is not None:
        if kind not in ("coefficient", "scale"):
            raise SpecError(f"parameter {pname!r}: scales_with applies to coefficients and scales, not {kind}")
        if not isinstance(sw, (list, tuple)) or len(sw) != 2 or sw[0] not in inputs:
            raise SpecError(f"parameter {pname!r}: scales_with must be [input, exponent] with input among "
                            f"{list(inputs)}, got {sw!r}")
        power = sw[1]
        if isinstance(power, str):
            if power not in all_params or power == pname:
                raise SpecError(f"parameter {pname!r}: scales_with exponent {power!r} is not another parameter")
        elif isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power):
            raise SpecError(f"parameter {pname!r}: scales_with exponent must be a parameter name or a number")
        else:
            power = float(power)
        sw = (sw[0], power)
    return Parameter(pname, description, kind, sw)
