"""Scaling-law definitions shared by NumPy, PyTensor and the point fits.

A law is one Python function of its inputs and parameters that returns the
*log* of the predicted loss, written against a small backend namespace ``xp``
(:data:`NUMPY` or :data:`PYTENSOR`), so the same definition drives the NUTS
model, the predictions and the point fits. Sums of positive terms are written
with ``xp.logsumexp`` so that losses close to the irreducible term and inputs
from 1e3 to 1e30 stay finite.

Parameter names are read from the function signature, as in lmfit: the
declared inputs come first, the parameters after them.

Each coefficient that multiplies a power of an input declares how it scales
(``scales={"A": ("N", "alpha")}``: A/N^alpha is unchanged when N is divided by
s and A by s^alpha). The model uses this to centre the inputs internally,
which removes the near-perfect correlation between log A and alpha.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..base.errors import SpecError

__all__ = [
    "Law",
    "Parameter",
    "law",
    "get_law",
    "available_laws",
    "NUMPY",
    "PYTENSOR",
]


class _NumpyBackend:
    """NumPy functions under the names laws use."""

    name = "numpy"
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    expm1 = staticmethod(np.expm1)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)

    @staticmethod
    def logsumexp(terms):
        """log(sum(exp(t) for t in terms)) over a few broadcastable arrays, shifted by their maximum.

        Elementwise over the terms, without stacking them: ``scipy.special.logsumexp`` on the stacked
        array took 20 times as long for a law on 4000 draws x 240 runs (it dominated building a fit's
        result); the two agree to 2e-15.
        """
        terms = np.broadcast_arrays(*terms)
        top = terms[0]
        for t in terms[1:]:
            top = np.maximum(top, t)
        shift = np.where(np.isfinite(top), top, 0.0)
        total = sum(np.exp(t - shift) for t in terms)
        with np.errstate(divide="ignore"):
            return shift + np.log(total)


class _PyTensorBackend:
    """PyTensor functions under the names laws use (imported lazily)."""

    name = "pytensor"

    def __getattr__(self, item):
        import pytensor.tensor as pt

        table = {
            "exp": pt.exp,
            "log": pt.log,
            "log1p": pt.log1p,
            "expm1": pt.expm1,
            "minimum": pt.minimum,
            "maximum": pt.maximum,
            "where": pt.switch,
        }
        if item in table:
            return table[item]
        raise AttributeError(item)

    @staticmethod
    def logsumexp(terms):
        import pytensor.tensor as pt

        out = terms[0]
        for term in terms[1:]:
            out = pt.logaddexp(out, term)
        return out


def _as_float64_tensor(value):
    """Numbers become float64 constants (PyTensor would make 400.0 a float32 constant)."""
    from pytensor.graph.basic import Variable
    import pytensor.tensor as pt

    if isinstance(value, Variable):
        return value
    return pt.as_tensor_variable(np.asarray(value, dtype="float64"))


NUMPY = _NumpyBackend()
PYTENSOR = _PyTensorBackend()

_INPUT_NAMES = {"N": "parameters", "D": "tokens seen", "C": "training FLOPs", "U": "unique tokens"}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a law, in the published convention.

    Attributes
    ----------
    name : str
        Name as in the literature (``E``, ``A``, ``alpha`` ...).
    description : str
        One line for reports.
    kind : {"irreducible", "coefficient", "exponent", "scale", "shape"}
        Decides the default prior (see :mod:`bayescale.core.priors`).
    scales_with : tuple of (str, str or float) or None
        For a coefficient ``A`` of ``A / N**alpha``: ``("N", "alpha")``. For a
        critical scale such as Kaplan's ``N_c``: ``("N", 1.0)``.
    """

    name: str
    description: str
    kind: str
    scales_with: tuple | None = None


@dataclass(frozen=True)
class Law:
    """A scaling law: a log-loss function with named inputs and parameters.

    Use :func:`law` to make one, or :func:`get_law` to fetch a shipped one.

    Attributes
    ----------
    name : str
    inputs : tuple of str
        Canonical run-data columns the law reads (``N``, ``D``, ``C``, ``U``).
    parameters : tuple of Parameter
    formula : str
        Plain-text formula for reports.
    latex : str
    references : tuple of str
    """

    name: str
    function: Callable
    inputs: tuple
    parameters: tuple
    formula: str
    latex: str = ""
    references: tuple = ()
    description: str = ""

    @property
    def param_names(self) -> tuple:
        """Names of the parameters, in signature order."""
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        """Return the :class:`Parameter` called `name` (error lists the valid names)."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise SpecError(
            f"Law {self.name!r} has no parameter {name!r}; valid names: {', '.join(self.param_names)}"
        )

    def log_loss(self, inputs: Mapping, params: Mapping, xp=NUMPY):
        """Evaluate the log of the predicted loss.

        Parameters
        ----------
        inputs : mapping
            Input arrays by canonical name (``N``, ``D`` ...), broadcastable
            against the parameters.
        params : mapping
            Parameter values (published convention) by name.
        xp : backend
            :data:`NUMPY` (default) or :data:`PYTENSOR`.

        Returns
        -------
        array or tensor
            log L, broadcast over inputs and parameters (with NumPy, non-finite
            where a parameter or input is 0 or infinite, without a NumPy warning).

        Examples
        --------
        >>> import numpy as np
        >>> law = get_law("chinchilla")
        >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
        >>> float(np.exp(law.log_loss({"N": 70e9, "D": 1.4e12}, p)))  # doctest: +ELLIPSIS
        1.93...
        """
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise SpecError(f"Law {self.name!r} needs input(s) {missing}; got {sorted(inputs)}")
        missing = [k for k in self.param_names if k not in params]
        if missing:
            raise SpecError(
                f"Law {self.name!r} needs parameter(s) {missing}; valid names: {', '.join(self.param_names)}"
            )
        args = {k: inputs[k] for k in self.inputs}
        args.update({k: params[k] for k in self.param_names})
        if xp is PYTENSOR:
            args = {k: _as_float64_tensor(v) for k, v in args.items()}
            return self.function(xp, **args)
        # A zero or infinite parameter draw gives an infinite log loss: the tables built on it name such draws
        # (DegenerateResultWarning, tablecheck), so NumPy's own warning would only repeat it, once per call.
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return self.function(xp, **args)

    def loss(self, inputs: Mapping, params: Mapping):
        """Predicted loss with NumPy: ``exp(log_loss(...))``.

        Examples
        --------
        >>> law = get_law("power_n")
        >>> round(float(law.loss({"N": 1e9}, dict(E=2.0, A=100.0, alpha=0.5))), 6)
        2.003162
        """
        return np.exp(self.log_loss(inputs, params, NUMPY))

    def check_scaling(self, rng=None) -> None:
        """Verify numerically that the declared coefficient scalings hold.

        Raises :class:`~bayescale.base.errors.SpecError` if rescaling an input and
        its coefficients changes the predicted loss, which would make the
        internal centring wrong.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        inputs = {k: 10 ** rng.uniform(7, 11, size=5) for k in self.inputs}
        if "U" in inputs and "D" in inputs:
            inputs["U"] = inputs["D"] / 10 ** rng.uniform(0, 1.5, size=5)
        params = {p.name: float(rng.uniform(0.2, 0.5)) if p.kind in ("exponent", "shape") else float(10 ** rng.uniform(0, 2))
                  for p in self.parameters}
        shift = {k: float(10 ** rng.uniform(-3, 3)) for k in self.scaled_inputs}
        shift.update({k: shift[v] for k, v in self.scaled_inputs.items() if v != k})
        shift.update({k: 1.0 for k in self.inputs if k not in shift})
        scaled_inputs = {k: v / shift[k] for k, v in inputs.items()}
        scaled = dict(params)
        for p in self.parameters:
            if p.scales_with is not None:
                inp, power = p.scales_with
                power = params[power] if isinstance(power, str) else power
                scaled[p.name] = params[p.name] / shift[inp] ** power
        a = self.log_loss(inputs, params)
        b = self.log_loss(scaled_inputs, scaled)
        if not np.allclose(a, b, rtol=1e-8, atol=1e-10):
            raise SpecError(
                f"Law {self.name!r}: the declared scalings {self.scalings} do not leave the loss unchanged "
                "when inputs are rescaled; fix the 'scales_with' declarations."
            )

    @property
    def scaled_inputs(self) -> dict:
        """``{input: input whose scale it shares}`` for every input the model centres.

        An input is centred when some coefficient declares it scales with it;
        unique tokens ``U`` share the scale of ``D`` (both count tokens).
        """
        out = {p.scales_with[0]: p.scales_with[0] for p in self.parameters if p.scales_with is not None}
        if "U" in self.inputs and "D" in out:
            out["U"] = "D"
        return out

    @property
    def scalings(self) -> dict:
        """Declared coefficient scalings, ``{param: (input, exponent)}``."""
        return {p.name: p.scales_with for p in self.parameters if p.scales_with is not None}

    def __str__(self) -> str:
        lines = [f"Law {self.name!r}: L = {self.formula}", f"  inputs: {', '.join(self.inputs)}"]
        for p in self.parameters:
            lines.append(f"  {p.name:<9} {p.description}")
        return "\n".join(lines)


_REGISTRY: dict = {}


def law(*, inputs, kinds, formula, latex="", scales=None, references=(), description="", name=None,
        register=True):
    """Decorator that turns a log-loss function into a :class:`Law`.

    Parameters
    ----------
    inputs : sequence of str
        The leading arguments of the function after ``xp``.
    kinds : mapping
        ``{param: (kind, description)}`` for every remaining argument.
    formula, latex : str
        Text forms for reports.
    scales : mapping, optional
        ``{param: (input, exponent_name_or_number)}``.
    register : bool
        Make the law available to :func:`get_law` by name.

    Examples
    --------
    >>> @law(inputs=["N"], kinds={"E": ("irreducible", "floor"), "A": ("coefficient", "size"),
    ...      "alpha": ("exponent", "slope")}, formula="E + A / N**alpha",
    ...      scales={"A": ("N", "alpha")}, register=False)
    ... def my_law(xp, N, E, A, alpha):
    ...     return xp.logsumexp([xp.log(E), xp.log(A) - alpha * xp.log(N)])
    >>> my_law.param_names
    ('E', 'A', 'alpha')
    """
    scales = dict(scales or {})

    def wrap(fn):
        sig = list(inspect.signature(fn).parameters)
        if not sig or sig[0] != "xp":
            raise SpecError(f"law function {fn.__name__!r} must take 'xp' as its first argument")
        args = sig[1:]
        if tuple(args[: len(inputs)]) != tuple(inputs):
            raise SpecError(f"law {fn.__name__!r}: arguments {args} must start with the inputs {list(inputs)}")
        pnames = args[len(inputs):]
        if set(pnames) != set(kinds):
            raise SpecError(f"law {fn.__name__!r}: kinds given for {sorted(kinds)} but parameters are {pnames}")
        params = tuple(
            Parameter(n, kinds[n][1], kinds[n][0], tuple(scales[n]) if n in scales else None) for n in pnames
        )
        obj = Law(name or fn.__name__, fn, tuple(inputs), params, formula, latex, tuple(references), description)
        if register:
            _REGISTRY[obj.name] = obj
        return obj

    return wrap


def get_law(name) -> Law:
    """Return a shipped law by name (or pass a :class:`Law` through).

    Examples
    --------
    >>> get_law("chinchilla").param_names
    ('E', 'A', 'B', 'alpha', 'beta')
    """
    if isinstance(name, Law):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SpecError(f"Unknown law {name!r}; available laws: {', '.join(sorted(_REGISTRY))}") from None


def available_laws() -> list:
    """Names of the shipped laws.

    Examples
    --------
    >>> "kaplan" in available_laws()
    True
    """
    return sorted(_REGISTRY)


_HOFFMANN = "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models"
_KAPLAN = "Kaplan et al. 2020, Scaling Laws for Neural Language Models"
_MUENNIGHOFF = "Muennighoff et al. 2023, Scaling Data-Constrained Language Models"

_E = ("irreducible", "irreducible loss (entropy of text)")


@law(
    inputs=["N", "D"],
    kinds={
        "E": _E,
        "A": ("coefficient", "coefficient of the model-size term"),
        "B": ("coefficient", "coefficient of the data term"),
        "alpha": ("exponent", "model-size exponent"),
        "beta": ("exponent", "data exponent"),
    },
    scales={"A": ("N", "alpha"), "B": ("D", "beta")},
    formula="E + A / N**alpha + B / D**beta",
    latex=r"E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}",
    references=[_HOFFMANN],
    description="Chinchilla form: irreducible loss plus independent model-size and data terms.",
)
def chinchilla(xp, N, D, E, A, B, alpha, beta):
    return xp.logsumexp([xp.log(E) + 0.0 * N, xp.log(A) - alpha * xp.log(N), xp.log(B) - beta * xp.log(D)])


@law(
    inputs=["N", "D"],
    kinds={
        "N_c": ("scale", "critical model size"),
        "D_c": ("scale", "critical dataset size"),
        "alpha_N": ("exponent", "model-size exponent"),
        "alpha_D": ("exponent", "data exponent"),
    },
    scales={"N_c": ("N", 1.0), "D_c": ("D", 1.0)},
    formula="((N_c / N)**(alpha_N / alpha_D) + D_c / D)**alpha_D",
    latex=r"\left[\left(\frac{N_c}{N}\right)^{\alpha_N/\alpha_D} + \frac{D_c}{D}\right]^{\alpha_D}",
    references=[_KAPLAN],
    description="Kaplan et al. joint form L(N, D), no irreducible term.",
)
def kaplan(xp, N, D, N_c, D_c, alpha_N, alpha_D):
    return alpha_D * xp.logsumexp(
        [(alpha_N / alpha_D) * (xp.log(N_c) - xp.log(N)), xp.log(D_c) - xp.log(D)]
    )


def _with_signature(var, coef, expo):
    # Build the explicit-signature function the decorator needs without exec.
    if var == "N":
        def f(xp, N, E, A, alpha):
            return xp.logsumexp([xp.log(E) + 0.0 * N, xp.log(A) - alpha * xp.log(N)])
    elif var == "D":
        def f(xp, D, E, B, beta):
            return xp.logsumexp([xp.log(E) + 0.0 * D, xp.log(B) - beta * xp.log(D)])
    else:
        def f(xp, C, E, K, gamma):
            return xp.logsumexp([xp.log(E) + 0.0 * C, xp.log(K) - gamma * xp.log(C)])
    return f


for _var, _coef, _expo, _what in (("N", "A", "alpha", "model-size"), ("D", "B", "beta", "data"),
                                  ("C", "K", "gamma", "compute")):
    law(
        inputs=[_var],
        kinds={"E": _E, _coef: ("coefficient", f"coefficient of the {_what} term"),
               _expo: ("exponent", f"{_what} exponent")},
        scales={_coef: (_var, _expo)},
        formula=f"E + {_coef} / {_var}**{_expo}",
        latex=rf"E + \frac{{{_coef}}}{{{_var}^{{\{_expo}}}}}",
        references=[_KAPLAN, _HOFFMANN],
        description=f"Single-variable power law in {_INPUT_NAMES[_var]} with an irreducible term.",
        name=f"power_{_var.lower()}",
    )(_with_signature(_var, _coef, _expo))


def _effective(xp, unique, total, r_star):
    """Muennighoff et al.'s effective count: U + U R* (1 - exp(-R / R*)), R = max(total/U - 1, 0)."""
    repeats = xp.maximum(total / unique - 1.0, 0.0)
    return unique * (1.0 - r_star * xp.expm1(-repeats / r_star))


@law(
    inputs=["N", "D", "U"],
    kinds={
        "E": _E,
        "A": ("coefficient", "coefficient of the model-size term"),
        "B": ("coefficient", "coefficient of the data term"),
        "alpha": ("exponent", "model-size exponent"),
        "beta": ("exponent", "data exponent"),
        "R_D": ("shape", "repetitions of data after which its value decays (R_D*)"),
        "R_N": ("shape", "excess parameters after which their value decays (R_N*)"),
    },
    scales={"A": ("N", "alpha"), "B": ("D", "beta")},
    formula="E + A / N'**alpha + B / D'**beta, D' = U + U R_D (1 - exp(-(D/U - 1) / R_D)), "
            "N' likewise with U_N = min(N, N_opt(U))",
    latex=r"E + \frac{A}{N'^{\alpha}} + \frac{B}{D'^{\beta}}",
    references=[_MUENNIGHOFF],
    description="Data-constrained law: repeated tokens and excess parameters are worth less than fresh ones.",
)
def data_constrained(xp, N, D, U, E, A, B, alpha, beta, R_D, R_N):
    d_eff = _effective(xp, U, D, R_D)
    # Compute-optimal model size for U tokens under the Chinchilla allocation.
    log_g = (xp.log(alpha * A) - xp.log(beta * B)) / (alpha + beta)
    log_n_opt = log_g * (alpha + beta) / alpha + (beta / alpha) * xp.log(U)
    unique_n = xp.minimum(N, xp.exp(log_n_opt))
    n_eff = _effective(xp, unique_n, N, R_N)
    return xp.logsumexp([xp.log(E) + 0.0 * N, xp.log(A) - alpha * xp.log(n_eff), xp.log(B) - beta * xp.log(d_eff)])
