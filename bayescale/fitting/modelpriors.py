"""The priors of a :class:`~bayescale.fitting.model.ScalingModel`'s fit: the user's, checked against the
model's parameters, and data-scaled defaults for the rest (the groups' spreads among them).

Functions of a model's settings; :meth:`ScalingModel.resolve_priors` is the public entry.
"""

from __future__ import annotations

from ..base.errors import SpecError
from ..core.pooling import (GROUP_NOISE, POP_SUFFIX, SD_SUFFIX, default_group_sd_prior, default_level_sd_prior,
                            level_coordinates, pooled_in_level_form)
from ..core.priors import Beta, DataScale, LogNormal, Prior, Uniform, default_prior
from ..runs.data import RUN_SD
from .modelruns import offset_count

__all__ = ["check_priors", "data_scale", "resolved_priors", "priors_for", "level_kinds", "group_sd_default"]


def level_kinds(model) -> dict:
    """``{coordinate: kind}`` (and ``{"sigma": "noise"}``) when the groups vary in level coordinates, else empty."""
    if not pooled_in_level_form(model.law, model.pooling):
        return {}
    return {**dict(level_coordinates(model.law)), GROUP_NOISE: "noise"}


def group_sd_default(model, name):
    """Default prior of the group spread `name` (``<parameter or coordinate>_group_sd``)."""
    base = name[: -len(SD_SUFFIX)]
    kinds = level_kinds(model)
    return default_level_sd_prior(kinds[base]) if base in kinds else default_group_sd_prior(model.kind(base))


def check_priors(model) -> None:
    """Refuse, naming the parameter and what is valid, a prior on no parameter of `model` or of the wrong family."""
    valid = model.prior_names + ((RUN_SD,) if model.within_run != "none" else ())
    for name, prior in model.priors.items():
        if not isinstance(name, str) or name not in valid:
            if isinstance(name, str) and name.endswith(POP_SUFFIX) and name[: -len(POP_SUFFIX)] in model.law.param_names:
                raise SpecError(f"set the prior of {name[: -len(POP_SUFFIX)]!r} instead of {name!r}: with "
                                "partial pooling it is the prior of the population value")
            raise SpecError(f"no parameter {name!r} to set a prior on; valid names: {', '.join(valid)}")
        if not isinstance(prior, Prior):
            raise SpecError(
                f"prior for {name!r} must be a bayescale.core.priors object such as LogNormal(mu=0, sigma=1), "
                f"got {prior!r}"
            )
        kind = model.kind(name)
        scaled = kind in ("coefficient", "scale")
        if scaled and not isinstance(prior, LogNormal):
            raise SpecError(
                f"{name!r} is a {kind}: its prior must be LogNormal (a Normal prior on its log), got {prior}"
            )
        if not scaled and isinstance(prior, LogNormal) and prior.at is not None:
            raise SpecError(f"'at' applies only to coefficient priors; {name!r} is a {kind}")
        if name == "undertuned_rate":
            _check_rate_prior(prior)
        if not scaled and not prior.positive:
            raise SpecError(
                f"{name!r} must be positive; its prior {prior} puts mass on negative values. "
                "Use LogNormal, HalfNormal, Gamma, Exponential or Uniform(lower >= 0)."
            )


def data_scale(model, runs) -> DataScale:
    """The scales of `runs` that the default priors of `model` are set from."""
    return DataScale.from_runs(runs.inputs(model.law.inputs), runs.loss, model.law.scaled_inputs)


def resolved_priors(model, scale: DataScale, offsets: bool = False) -> dict:
    """Priors of :attr:`prior_names` (and of ``run_sd`` when the fit has per-run offsets)."""
    out = {}
    for name in model.prior_names:
        kind = model.kind(name)
        if name in model.priors:
            out[name] = model.priors[name]
        elif kind == "group_sd":
            out[name] = group_sd_default(model, name)
        else:
            sw = model.law.parameter(name).scales_with if name in model.law.param_names else None
            out[name] = default_prior(kind, scale, sw)
    if offsets:
        out[RUN_SD] = model.priors.get(RUN_SD) or default_prior("run_sd", scale)
    return out


def priors_for(model, runs):
    """What a fit of `model` to `runs` is set up from: the runs' data scales, their number of per-run offsets,
    and every prior (:func:`resolved_priors`)."""
    scale = data_scale(model, runs)
    n_offsets = offset_count(model, runs)
    return scale, n_offsets, resolved_priors(model, scale, offsets=bool(n_offsets))


def _check_rate_prior(prior) -> None:
    if isinstance(prior, Beta) or (isinstance(prior, Uniform) and prior.lower >= 0 and prior.upper <= 1):
        return
    raise SpecError(f"'undertuned_rate' is a probability: its prior must be Beta or Uniform within [0, 1], "
                    f"got {prior}")
