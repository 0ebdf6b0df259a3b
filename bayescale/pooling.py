"""How each law parameter varies across groups of runs: the pooling settings and their names.

See :mod:`bayescale.hierarchy` for the model.
"""

from __future__ import annotations

from typing import Mapping

from .errors import SpecError
from .priors import HalfNormal

__all__ = ["Pooling", "POOLING_CHOICES", "NEW_GROUP", "POP_SUFFIX", "SD_SUFFIX", "pop_name", "sd_name",
           "default_group_sd_prior"]

POOLING_CHOICES = {
    "shared": "one value for all groups",
    "partial": "one value per group, partially pooled towards a population value (non-centred)",
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
    bayescale.errors.SpecError: pooling of 'E' is 'pooled'; valid choices: shared, partial, independent
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
