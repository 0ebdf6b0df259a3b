"""How each law parameter varies across groups of runs: the pooling settings and their names.

See :mod:`bayescale.analysis.hierarchy` for the model.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..base.errors import SpecError
from .priors import Gamma, HalfNormal

__all__ = ["Pooling", "POOLING_CHOICES", "NEW_GROUP", "POP_SUFFIX", "SD_SUFFIX", "pop_name", "sd_name",
           "default_group_sd_prior", "level_terms", "pooled_in_level_form", "level_coordinates",
           "default_level_sd_prior", "to_level", "from_level", "GROUP_NOISE"]

POOLING_CHOICES = {
    "shared": "one value for all groups",
    "partial": "one value per group, partially pooled towards a population value",
    "independent": "one value per group, no pooling",
}
#: Label that asks for a new, unseen group drawn from the population.
NEW_GROUP = "new"
POP_SUFFIX = "_pop"
SD_SUFFIX = "_group_sd"

# Default hyperprior on the between-group spread, on the parameter's internal (log) scale.
_GROUP_SD = {"irreducible": 0.5, "coefficient": 1.0, "scale": 1.0, "exponent": 0.3, "shape": 0.5}


def pop_name(name: str) -> str:
    return name + POP_SUFFIX


def sd_name(name: str) -> str:
    return name + SD_SUFFIX


def default_group_sd_prior(kind: str):
    """Default hyperprior of ``<name>_group_sd`` for a parameter of this kind.

    HalfNormal on the spread of the parameter's log (of the centred term for
    coefficients) between groups: sigma 0.5 for the irreducible loss and
    shapes (groups differing by a factor of about 1.4 typically), 1.0 for
    coefficients and scales, 0.3 for exponents.

    Examples
    --------
    >>> print(default_group_sd_prior("irreducible"))
    HalfNormal(sigma=0.5)
    """
    if kind not in _GROUP_SD:
        raise SpecError(f"no group-level prior for parameters of kind {kind!r}")
    return HalfNormal(sigma=_GROUP_SD[kind])


class Pooling:
    """How each law parameter varies across groups of runs.

    Parameters
    ----------
    settings : mapping, optional
        ``{parameter: "shared" | "partial" | "independent"}``; parameters not
        named are shared.

    Examples
    --------
    >>> p = Pooling({"E": "partial", "A": "partial"})
    >>> p["E"], p["alpha"]
    ('partial', 'shared')
    >>> p.to_dict()
    {'E': 'partial', 'A': 'partial'}
    >>> Pooling({"E": "pooled"})
    Traceback (most recent call last):
    ...
    bayescale.base.errors.SpecError: pooling of 'E' is 'pooled'; valid choices: shared, partial, independent
    """

    def __init__(self, settings=None):
        if isinstance(settings, Pooling):
            settings = settings.to_dict()
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise SpecError(f"pooling must map parameter names to one of {', '.join(POOLING_CHOICES)}, "
                            f"e.g. {{'E': 'partial'}}; got {settings!r}")
        out = {}
        for name, choice in settings.items():
            if not isinstance(choice, str) or choice not in POOLING_CHOICES:
                raise SpecError(f"pooling of {name!r} is {choice!r}; valid choices: {', '.join(POOLING_CHOICES)}")
            if choice != "shared":
                out[str(name)] = choice
        self._settings = out

    def __getitem__(self, name) -> str:
        return self._settings.get(name, "shared")

    def check(self, law_params, other_params=()) -> None:
        """Raise if a named parameter is not one of the law's."""
        for name in self._settings:
            if name not in law_params:
                what = (f"{name!r} is a likelihood parameter and is shared by all groups; "
                        if name in other_params else f"the law has no parameter {name!r}; ")
                raise SpecError(f"cannot pool {name!r}: {what}parameters that can vary by group: "
                                f"{', '.join(law_params)}")

    def to_dict(self) -> dict:
        """``{name: choice}`` for the parameters that are not shared."""
        return dict(self._settings)

    def __bool__(self) -> bool:
        return bool(self._settings)

    def __eq__(self, other) -> bool:
        return isinstance(other, Pooling) and other._settings == self._settings

    def __hash__(self):
        return hash(tuple(sorted(self._settings.items())))

    def __repr__(self) -> str:
        return f"Pooling({self._settings!r})"


# ------------------------------------------------------------- level form
#: Default mean of the between-group spread of each level coordinate: the log loss at the data's centre
#: (groups within about 20% of each other), the logit of the irreducible share and of the split between
#: the terms, the log of each term's local slope.
_LEVEL_GROUP_SD = {"level": 0.2, "share": 0.5, "weight": 0.5, "slope": 0.3, "noise": 0.5}
#: The likelihood's scale, which varies by group (one population) when the groups vary in level coordinates.
GROUP_NOISE = "sigma"


def level_terms(law):
    """``((coefficient, exponent), ...)`` when `law` can be sampled in level form, else None.

    Level form applies to laws with one irreducible parameter and one or two coefficients, each scaling
    with its own exponent and nothing else scaled (Chinchilla, the single-variable power laws, the
    data-constrained law).

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> level_terms(get_law("chinchilla"))
    (('A', 'alpha'), ('B', 'beta'))
    """
    irreducible = [p.name for p in law.parameters if p.kind == "irreducible"]
    terms = tuple((p.name, p.scales_with[1]) for p in law.parameters
                  if p.kind == "coefficient" and p.scales_with is not None)
    exponents = [t[1] for t in terms]
    if (len(irreducible) != 1 or not 1 <= len(terms) <= 2 or len(set(exponents)) != len(exponents)
            or not all(isinstance(e, str) and law.parameter(e).kind == "exponent" for e in exponents)):
        return None
    if sum(p.kind in ("coefficient", "scale") for p in law.parameters) != len(terms):
        return None
    return terms


def pooled_in_level_form(law, pooling) -> bool:
    """Whether a model pools across groups in level coordinates: every parameter of a level-form law partial.

    The groups then vary in the level form's coordinates (the loss at the data's centre, the irreducible
    share of it, the split between the terms and each term's local slope), each drawn from a population
    (see :func:`level_coordinates`), and each group has its own noise scale ``sigma``, drawn from a
    population too (one noisy ladder does not set the noise of the others).
    """
    return level_terms(law) is not None and all(pooling[n] == "partial" for n in law.param_names)


def level_coordinates(law) -> tuple:
    """``((coordinate, kind), ...)``: the level form's coordinates of `law`, as named in group spreads.

    ``level`` (log of the loss at the data's centre), ``<E>_share`` (logit of the irreducible share of it),
    ``<A>_weight`` (logit of the first term's share of the reducible loss; two terms only) and
    ``<alpha>_slope`` (log of each term's local log-log slope at the centre, ``alpha a / L0``).

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> [c for c, _ in level_coordinates(get_law("chinchilla"))]
    ['level', 'E_share', 'A_weight', 'alpha_slope', 'beta_slope']
    """
    terms = level_terms(law)
    e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
    out = [("level", "level"), (f"{e_name}_share", "share")]
    if len(terms) == 2:
        out.append((f"{terms[0][0]}_weight", "weight"))
    out += [(f"{expo}_slope", "slope") for _coef, expo in terms]
    return tuple(out)


def default_level_sd_prior(kind: str):
    """Default hyperprior of a level coordinate's between-group spread: ``Gamma(2, 2 / s)``, mean s.

    Zero-avoiding (density 0 at 0, a mode at s / 2): with few groups a HalfNormal lets the spread
    collapse to 0, where the groups' centred coordinates meet a funnel the sampler diverges in.
    s is 0.2 for the level, 0.5 for the shares, 0.3 for the slopes, 0.5 for the log of the noise
    scale ``sigma`` (kind ``"noise"``).

    Examples
    --------
    >>> print(default_level_sd_prior("slope"))
    Gamma(alpha=2, beta=6.667)
    """
    if kind not in _LEVEL_GROUP_SD:
        raise SpecError(f"no group-level prior for level coordinates of kind {kind!r}")
    return Gamma(alpha=2.0, beta=2.0 / _LEVEL_GROUP_SD[kind])


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def to_level(law, values) -> dict:
    """Level coordinates from law parameters in the centred convention (coefficients at the data's centre).

    `values` maps the irreducible parameter, the centred coefficients and the exponents to arrays;
    returns ``{coordinate: array}`` (see :func:`level_coordinates`); :func:`from_level` inverts it.

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> law = get_law("chinchilla")
    >>> v = {"E": 1.7, "A": 0.4, "B": 0.6, "alpha": 0.34, "beta": 0.28}
    >>> back = from_level(law, to_level(law, v))
    >>> all(abs(back[k] - v[k]) < 1e-12 for k in v)
    True
    """
    terms = level_terms(law)
    e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
    e = np.asarray(values[e_name], dtype=float)
    a = [np.asarray(values[c], dtype=float) for c, _ in terms]
    level = e + sum(a)
    reducible = level - e
    out = {"level": np.log(level), f"{e_name}_share": np.log(e) - np.log(reducible)}
    if len(terms) == 2:
        out[f"{terms[0][0]}_weight"] = np.log(a[0]) - np.log(a[1])
    for (_c, expo), ai in zip(terms, a):
        out[f"{expo}_slope"] = np.log(np.asarray(values[expo], dtype=float)) + np.log(ai) - np.log(level)
    return out


def from_level(law, coords) -> dict:
    """Law parameters (centred coefficients) from level coordinates: the inverse of :func:`to_level`."""
    terms = level_terms(law)
    e_name = next(p.name for p in law.parameters if p.kind == "irreducible")
    share = np.asarray(coords[f"{e_name}_share"], dtype=float)
    level = np.asarray(coords["level"], dtype=float)
    log_1mf = _log_sigmoid(-share)
    out = {e_name: np.exp(level + _log_sigmoid(share))}
    if len(terms) == 2:
        weight = np.asarray(coords[f"{terms[0][0]}_weight"], dtype=float)
        log_w = (_log_sigmoid(weight), _log_sigmoid(-weight))
    else:
        log_w = (0.0,)
    for (coef, expo), lw in zip(terms, log_w):
        out[coef] = np.exp(level + log_1mf + lw)
        out[expo] = np.exp(np.asarray(coords[f"{expo}_slope"], dtype=float) - log_1mf - lw)
    return out
