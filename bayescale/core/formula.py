"""Safe formula strings for custom scaling laws.

A formula such as ``"E + A / N**alpha + B / D**beta"`` is parsed with
:mod:`ast` (``mode="eval"``) and checked node by node against a whitelist:
numbers, the declared names (inputs and parameters), ``+ - * / **``, unary
minus, parentheses and calls to ``exp``, ``log``, ``minimum`` and
``maximum``. Anything else — attribute access, subscripts, other calls,
keywords, dunder names, lambdas, comprehensions, strings, comparisons — is
refused with a :class:`~bayescale.base.errors.SpecError` that points at the
offending token. The formula is never passed to ``eval`` or ``compile``: the
checked tree is walked to evaluate it on NumPy arrays or PyTensor tensors
(through the ``xp`` backends of :mod:`bayescale.core.laws`) and to render it as
plain text and LaTeX.

A formula gives the *loss*; :func:`formula_law` wraps it into a
:class:`~bayescale.core.laws.Law` whose log loss is ``log(formula)``.
"""

from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..base.errors import SpecError
from .laws import NUMPY

__all__ = ["Formula", "parse_formula", "MAX_LENGTH", "MAX_NODES", "MAX_DEPTH", "FUNCTIONS", "INPUTS", "KINDS"]


#: Longest formula accepted, in characters.
MAX_LENGTH = 2000
#: Most syntax-tree nodes accepted.
MAX_NODES = 500
#: Deepest nesting accepted.
MAX_DEPTH = 100
#: Functions a formula may call, with their number of arguments.
FUNCTIONS = {"exp": 1, "log": 1, "minimum": 2, "maximum": 2}
#: Run-data columns a formula may use as inputs.
INPUTS = ("N", "D", "C", "U")
#: Parameter kinds (they decide default priors, see :mod:`bayescale.core.priors`).
KINDS = ("irreducible", "coefficient", "exponent", "scale", "shape")

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4, "num": 5, "name": 5, "call": 5}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
          "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
          "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment expressions",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def _allowed(names) -> str:
    return (f"allowed: numbers, the names {', '.join(names) or '(none declared)'}, + - * / **, unary -, "
            f"parentheses and {', '.join(f'{f}()' for f in FUNCTIONS)}")


class _Refuse(Exception):
    def __init__(self, node, why):
        self.node, self.why = node, why


@dataclass(frozen=True)
class Formula:
    """A checked formula: a small expression tree over declared names.

    Build one with :func:`parse_formula`. Instances compare equal (and hash)
    by their tree, so equal formulas share a compiled model graph.

    Attributes
    ----------
    text : str
        The formula as given.
    names : tuple of str
        Names it uses, in order of first appearance.
    """

    text: str = field(compare=False)
    tree: tuple = field(repr=False)
    names: tuple = field(compare=False)

    def evaluate(self, values: Mapping, xp=NUMPY):
        """Evaluate with ``values`` (name -> array or tensor) on backend ``xp``.

        Examples
        --------
        >>> f = parse_formula("E + A / N**alpha", ["N", "E", "A", "alpha"])
        >>> float(f.evaluate({"N": 1e4, "E": 1.0, "A": 100.0, "alpha": 0.5}))
        2.0
        """
        missing = [n for n in self.names if n not in values]
        if missing:
            raise SpecError(f"formula {self.text!r} needs value(s) for {missing}")
        return _evaluate(self.tree, values, xp)

    def to_text(self) -> str:
        """Plain text with the fewest parentheses that keep the same tree.

        Examples
        --------
        >>> parse_formula("((E) + (A / (N ** alpha)))", ["N", "E", "A", "alpha"]).to_text()
        'E + A / N**alpha'
        """
        return _text(self.tree)

    def to_latex(self) -> str:
        """LaTeX for reports (Greek parameter names become Greek letters).

        Examples
        --------
        >>> parse_formula("E + A / N**alpha", ["N", "E", "A", "alpha"]).to_latex()
        'E + \\\\frac{A}{N^{\\\\alpha}}'
        """
        return _latex(self.tree)

    def __str__(self) -> str:
        return self.to_text()


def _pointer(text: str, node) -> str:
    col = getattr(node, "col_offset", None)
    if col is None:
        return ""
    end = getattr(node, "end_col_offset", None) or col + 1
    width = max(1, min(end, len(text)) - col)
    return _caret(text, col, width)


def parse_formula(text, names) -> Formula:
    """Parse and check a formula string.

    Parameters
    ----------
    text : str
        The formula, e.g. ``"E + A / N**alpha + B / D**beta"``.
    names : iterable of str
        Names the formula may use (the law's inputs and parameters).

    Returns
    -------
    Formula

    Raises
    ------
    SpecError
        For anything outside the whitelist, an undeclared name, a syntax
        error, or a formula longer than :data:`MAX_LENGTH` characters, with
        more than :data:`MAX_NODES` nodes or nested deeper than
        :data:`MAX_DEPTH`. The message names the offending token and its
        column.

    Examples
    --------
    >>> parse_formula("E + A / N**alpha", ["N", "E", "A", "alpha"]).names
    ('E', 'A', 'N', 'alpha')
    >>> parse_formula("E + N.__class__", ["N", "E"])
    Traceback (most recent call last):
    ...
    bayescale.base.errors.SpecError: formula refused at column 4: attribute access not allowed ('N.__class__'); ...
        E + N.__class__
            ^^^^^^^^^^^
    """
    names = tuple(dict.fromkeys(names))
    if not isinstance(text, str):
        raise SpecError(f"a formula must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"formula refused: {len(text)} characters, more than the limit of {MAX_LENGTH}")
    if not text.strip():
        raise SpecError("formula refused: it is empty")
    if "\n" in text or "\r" in text:
        raise SpecError("formula refused: it must fit on one line")
    for n in names:
        if not (isinstance(n, str) and n.isidentifier()) or n.startswith("_") or n in FUNCTIONS:
            raise SpecError(f"{n!r} cannot be a formula name: names must be identifiers that do not start "
                            f"with '_' and are not one of the functions {', '.join(FUNCTIONS)}")
    try:
        with warnings.catch_warnings():  # e.g. "1e9alpha": the error below says it; no SyntaxWarning too
            warnings.simplefilter("ignore", SyntaxWarning)
            module = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise SpecError(f"formula refused at column {col}: syntax error ({exc.msg}){_caret(text, col)}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SpecError(f"formula refused: it cannot be parsed ({type(exc).__name__}: {exc})") from None
    _check_size(module.body, text)
    try:
        tree = _convert(module.body, set(names), text)
    except _Refuse as r:
        raise SpecError(f"formula refused at column {getattr(r.node, 'col_offset', 0)}: {r.why}; "
                        f"{_allowed(names)}{_pointer(text, r.node)}") from None
    used = tuple(dict.fromkeys(_names(tree)))
    return Formula(text, tree, used)


def _caret(text, col, width=1):
    """The formula (a window of it when long) with carets under the offending token."""
    col = max(col, 0)
    start = max(0, col - 30) if len(text) > 72 else 0
    shown = text[start:start + 72]
    width = max(1, min(width, len(shown) - (col - start)))
    dots = "..." if start else ""
    return f"\n    {dots}{shown}{'...' if start + 72 < len(text) else ''}\n    {' ' * (len(dots) + col - start)}{'^' * width}"


def _check_size(root, text):
    count, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(f"formula refused: more than {MAX_NODES} syntax nodes")
        if depth > MAX_DEPTH:
            raise SpecError(f"formula refused at column {getattr(node, 'col_offset', 0)}: nested deeper than "
                            f"{MAX_DEPTH} levels{_pointer(text, node)}")
        stack.extend((child, depth + isinstance(child, ast.expr)) for child in ast.iter_child_nodes(node))


#: Magnitudes a number written in a formula may take (zero aside), as a prior's numbers
#: (:data:`bayescale.core.priors.HYPER_RANGE`): a factor of 1e308 overflows with any term above 1.8.
NUMBER_RANGE = (1e-50, 1e50)


def _segment(node, text) -> str:
    """The source text of `node`, as the user typed it."""
    try:
        return ast.get_source_segment(text, node) or ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node type we can meet
        return type(node).__name__


def _convert(node, names, text):
    tree = _convert_node(node, names, text)
    if tree[0] not in ("num", "name") and next(_names(tree), None) is None:
        with np.errstate(all="ignore"):  # a constant part: 1/0, 9**9**9, exp(1000), log(0) are refused here
            value = _evaluate(tree, {}, NUMPY)
        if not np.isfinite(value):
            raise _Refuse(node, f"constant {_segment(node, text)!r} is not a finite number (it is {float(value)!r})")
    return tree


def _convert_node(node, names, text):
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Refuse(node, f"constant {v!r} is not allowed (only real numbers)")
        try:
            value = float(v)
        except OverflowError:
            raise _Refuse(node, "number too large") from None
        if not math.isfinite(value):
            raise _Refuse(node, f"number {_segment(node, text)} is not finite")
        if value != 0 and not (NUMBER_RANGE[0] <= abs(value) <= NUMBER_RANGE[1]):
            raise _Refuse(node, f"number {_segment(node, text)} is outside the magnitudes a law's constants may "
                                f"take ({NUMBER_RANGE[0]:g} to {NUMBER_RANGE[1]:g}, or 0): the law would leave "
                                "float64's range at the runs' inputs and the fit find no finite starting point")
        return ("num", value)
    if isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id.startswith("_"):
            raise _Refuse(node, f"name {node.id!r} is not allowed (names starting with '_' are refused)")
        if node.id in FUNCTIONS:
            raise _Refuse(node, f"function {node.id!r} must be called, e.g. {node.id}(x)")
        if node.id not in names:
            raise _Refuse(node, f"name {node.id!r} is not declared")
        return ("name", node.id)
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise _Refuse(node, f"operator in {_segment(node, text)!r} is not allowed")
        return (op, _convert(node.left, names, text), _convert(node.right, names, text))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return ("neg", _convert(node.operand, names, text))
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, names, text)
        raise _Refuse(node, f"unary operator in {_segment(node, text)!r} is not allowed")
    if isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name):
            raise _Refuse(func, f"call of {_segment(func, text)!r} is not allowed")
        if func.id not in FUNCTIONS:
            raise _Refuse(func, f"unknown function {func.id!r}")
        if node.keywords:
            raise _Refuse(node.keywords[0].value, f"keyword arguments to {func.id}() are not allowed")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _Refuse(a, "starred arguments are not allowed")
        if len(node.args) != FUNCTIONS[func.id]:
            raise _Refuse(node, f"{func.id}() takes {FUNCTIONS[func.id]} argument(s), got {len(node.args)}")
        return ("call", func.id, *[_convert(a, names, text) for a in node.args])
    what = _REFUSED.get(type(node), f"{type(node).__name__} expressions")
    raise _Refuse(node, f"{what} not allowed ({_segment(node, text)[:40]!r})")


def _names(tree):
    kind = tree[0]
    if kind == "name":
        yield tree[1]
    elif kind == "num":
        return
    else:
        for child in tree[2:] if kind == "call" else tree[1:]:
            yield from _names(child)


def _evaluate(tree, values, xp):
    kind = tree[0]
    if kind == "num":
        return np.float64(tree[1])  # a float64 constant on both backends
    if kind == "name":
        return values[tree[1]]
    if kind == "neg":
        return -_evaluate(tree[1], values, xp)
    if kind == "call":
        args = [_evaluate(a, values, xp) for a in tree[2:]]
        return getattr(xp, tree[1])(*args)
    a, b = _evaluate(tree[1], values, xp), _evaluate(tree[2], values, xp)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        return a / b
    return a ** b


def _prec(tree):
    return _PREC[tree[0]]


def _num(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _text(tree) -> str:
    kind = tree[0]
    if kind == "num":
        return _num(tree[1])
    if kind == "name":
        return tree[1]
    if kind == "call":
        return f"{tree[1]}({', '.join(_text(a) for a in tree[2:])})"
    if kind == "neg":
        inner = tree[1]
        s = _text(inner)
        return f"-{s}" if _prec(inner) >= _PREC["neg"] else f"-({s})"
    p = _PREC[kind]
    left, right = tree[1], tree[2]
    ls, rs = _text(left), _text(right)
    if _prec(left) < p or (kind == "**" and _prec(left) <= p):
        ls = f"({ls})"
    if _prec(right) < p or (kind != "**" and _prec(right) == p):
        rs = f"({rs})"
    if kind == "**":
        return f"{ls}**{rs}"
    return f"{ls} {kind} {rs}"


def _latex_name(name: str) -> str:
    head, _, sub = name.partition("_")
    head = f"\\{head}" if head in _GREEK else (head if len(head) == 1 else rf"\mathrm{{{head}}}")
    if not sub:
        return head
    sub = f"\\{sub}" if sub in _GREEK else sub
    return f"{head}_{{{sub}}}"


def _latex(tree) -> str:
    kind = tree[0]
    if kind == "num":
        return _num(tree[1])
    if kind == "name":
        return _latex_name(tree[1])
    if kind == "call":
        args = [_latex(a) for a in tree[2:]]
        if tree[1] in ("minimum", "maximum"):
            return rf"\{tree[1][:3]}\left({args[0]}, {args[1]}\right)"
        return rf"\{tree[1]}\left({args[0]}\right)"
    if kind == "neg":
        inner = _latex(tree[1])
        atomic = _prec(tree[1]) >= _PREC["neg"] or tree[1][0] == "/"  # a fraction needs no parentheses
        return f"-{inner}" if atomic else rf"-\left({inner}\right)"
    left, right = tree[1], tree[2]
    if kind == "/":
        return rf"\frac{{{_latex(left)}}}{{{_latex(right)}}}"
    p = _PREC[kind]
    ls, rs = _latex(left), _latex(right)
    if kind == "**":
        if _prec(left) <= p:
            ls = rf"\left({ls}\right)"
        return f"{ls}^{{{rs}}}"
    if _prec(left) < p:
        ls = rf"\left({ls}\right)"
    if _prec(right) < p or (kind == "-" and _prec(right) == p) or rs.startswith("-"):  # no "a - -b"
        rs = rf"\left({rs}\right)"
    if kind == "*":
        return rf"{ls} \, {rs}"
    return f"{ls} {kind} {rs}"
