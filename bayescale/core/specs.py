"""Declarative model specifications: TOML files in ``models/``.

A spec names a law (a shipped one, or a formula over declared inputs), the
likelihood, priors by parameter, how parameters vary across groups, a
description and references. The shipped specs live in the repository's
``models/`` folder and are installed with the package; load one by name or
any file by path::

    model = bs.ScalingModel.from_spec("chinchilla")
    model = bs.ScalingModel.from_spec("my_law.toml")

Format (every table optional except ``law``)::

    name = "chinchilla_tied"
    description = "Chinchilla form with one exponent for model size and data"
    references = ["Muennighoff et al. 2023, Scaling Data-Constrained Language Models"]
    likelihood = "student_t"             # or "normal"
    within_run = "auto"                  # or "offset" / "none": checkpoints of one run (bayescale.fitting.model)
    undertuned = true                    # runs may sit above the law (bayescale.runs.undertuned)
    law = "chinchilla"                   # a shipped law ... or a formula table:

    [law]
    formula = "E + A / N**alpha + B / D**alpha"
    inputs = ["N", "D"]
    [law.parameters]
    E = { kind = "irreducible", description = "irreducible loss" }
    A = { kind = "coefficient", scales_with = ["N", "alpha"] }
    B = { kind = "coefficient", scales_with = ["D", "alpha"] }
    alpha = { kind = "exponent" }

    [priors]                             # data-scaled defaults for the rest
    alpha = { family = "LogNormal", mu = -1.05, sigma = 0.1 }
    A = { family = "LogNormal", mu = -1.0, sigma = 0.5, at = 1e9 }

    [pooling]                            # needs a 'group' column in the runs
    E = "partial"

    [form_uncertainty]                   # discrepancy beyond the fitted runs (bayescale.core.form);
    loss_scale = 0.05                    # form_uncertainty = false: the law's form is known

Formulas are parsed safely (:mod:`bayescale.core.formula`), never evaluated as
Python. A fit saved to netCDF carries the same tables
(:meth:`ScalingModel.to_dict`), so loading it rebuilds the model.
"""

from __future__ import annotations

import json
import math
import tomllib
from importlib import resources
from pathlib import Path

from ..base.errors import SpecError
from .formulalaw import formula_law
from .laws import get_law
from .priors import prior_from_dict

__all__ = ["available_specs", "read_spec", "spec_settings", "spec_path", "to_toml", "toml_table", "SPEC_KEYS",
           "LIKELIHOODS"]

#: Likelihoods of the run-to-run noise on log loss, by name.
LIKELIHOODS = {
    "student_t": "Student-t on log loss (robust to outlying runs, like the Huber loss of point fits)",
    "normal": "Normal on log loss",
}

#: Top-level keys of a spec.
SPEC_KEYS = ("name", "description", "references", "law", "likelihood", "priors", "pooling", "form_uncertainty",
             "undertuned", "within_run")
LAW_KEYS = ("name", "formula", "inputs", "parameters", "description", "references")


def _spec_dir():
    return resources.files("bayescale") / "models"


def available_specs() -> list:
    """Names of the shipped specs (files ``models/<name>.toml``).

    Examples
    --------
    >>> "chinchilla" in available_specs()
    True
    """
    folder = _spec_dir()
    try:
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))
    except (FileNotFoundError, NotADirectoryError):  # pragma: no cover - broken installation
        return []


def spec_path(spec) -> Path:
    """The file behind a spec name or path (errors list the shipped names).

    Examples
    --------
    >>> spec_path("kaplan").name
    'kaplan.toml'
    """
    if isinstance(spec, Path) or (isinstance(spec, str) and (spec.endswith(".toml") or "/" in spec or "\\" in spec)):
        path = Path(spec)
        if not path.is_file():
            raise SpecError(f"no spec file at {str(path)!r}")
        return path
    if not isinstance(spec, str):
        raise SpecError(f"a spec is a shipped name or a path to a .toml file, got {spec!r}")
    if spec in available_specs():
        return Path(str(_spec_dir() / f"{spec}.toml"))
    if Path(spec).is_file():
        return Path(spec)
    raise SpecError(f"no spec named {spec!r}; shipped specs: {', '.join(available_specs())} "
                    "(or pass a path to a .toml file)")


def read_spec(spec) -> dict:
    """The tables of a spec file, parsed with :mod:`tomllib` (not validated)."""
    path = spec_path(spec)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{str(path)!r} is not UTF-8 text: {exc}") from None
    data.setdefault("name", path.stem)
    return data


def _fail(source, msg):
    raise SpecError(f"{source}: {msg}")


def spec_settings(d, source="model specification") -> dict:
    """Check spec tables and turn them into the settings of a :class:`~bayescale.fitting.model.ScalingModel`.

    Every key is checked and every error names `source` and the key. Build
    the model with :func:`bayescale.fitting.model.model_from_dict` (or
    :meth:`ScalingModel.from_dict`), which calls this.

    Returns
    -------
    dict
        ``law`` (a Law), ``priors``, ``likelihood``, ``pooling``, and when
        given ``form_uncertainty`` and ``undertuned``; ``name``, ``description`` and
        ``references`` (the model's labels).

    Examples
    --------
    >>> spec_settings({"law": "power_n", "pooling": {"E": "partial"}})["pooling"]
    {'E': 'partial'}
    >>> spec_settings({"law": "power_n", "prior": {}})
    Traceback (most recent call last):
    ...
    bayescale.base.errors.SpecError: model specification: unknown key(s) ['prior']; valid keys: name, description, references, law, likelihood, priors, pooling, form_uncertainty, undertuned, within_run
    """
    if not isinstance(d, dict):
        _fail(source, f"expected a table of settings, got {type(d).__name__}")
    extra = [k for k in d if k not in SPEC_KEYS]
    if extra:
        _fail(source, f"unknown key(s) {extra}; valid keys: {', '.join(SPEC_KEYS)}")
    if "law" not in d:
        _fail(source, "a spec needs a 'law': a shipped law's name "
                      f"or a [law] table with a formula")
    law = d["law"]
    try:
        if isinstance(law, str):
            law = get_law(law)
        elif isinstance(law, dict):
            extra = [k for k in law if k not in LAW_KEYS]
            if extra:
                _fail(source, f"[law] has unknown key(s) {extra}; valid keys: {', '.join(LAW_KEYS)}")
            if "formula" not in law:
                if set(law) - {"name"}:
                    _fail(source, "[law] needs a 'formula' (or give only the 'name' of a shipped law)")
                law = get_law(law.get("name"))
            else:
                missing = [k for k in ("inputs", "parameters") if k not in law]
                if missing:
                    _fail(source, f"[law] with a formula needs {missing}")
                law = formula_law(law["formula"], inputs=law["inputs"], parameters=law["parameters"],
                                  name=law.get("name", d.get("name") or "custom"),
                                  description=law.get("description", ""),
                                  references=tuple(law.get("references", ())))
        else:
            _fail(source, f"'law' must be a law name or a table, got {law!r}")
    except SpecError as exc:
        if str(exc).startswith(source):
            raise
        _fail(source, str(exc))
    likelihood = d.get("likelihood", "student_t")
    if not isinstance(likelihood, str) or likelihood not in LIKELIHOODS:
        _fail(source, f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
    raw = d.get("priors") or {}
    if not isinstance(raw, dict):
        _fail(source, "'priors' must be a table of parameter = { family = ..., ... }")
    priors = {}
    for name, table in raw.items():
        try:
            priors[name] = prior_from_dict(table)
        except SpecError as exc:
            _fail(source, f"prior of {name!r}: {exc}")
    settings = {"law": law, "priors": priors, "likelihood": likelihood, "pooling": d.get("pooling")}
    if "form_uncertainty" in d:
        settings["form_uncertainty"] = d["form_uncertainty"]
    if "within_run" in d:  # checked by ScalingModel
        settings["within_run"] = d["within_run"]
    if "undertuned" in d:
        if not isinstance(d["undertuned"], bool):
            _fail(source, f"'undertuned' must be true or false, got {d['undertuned']!r}")
        settings["undertuned"] = d["undertuned"]
    for key in ("name", "description"):
        value = d.get(key)
        if value is not None and not isinstance(value, str):
            _fail(source, f"'{key}' must be text, got {value!r}")
        settings[key] = value
    refs = d.get("references", ())
    if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs):
        _fail(source, "'references' must be a list of strings")
    settings["references"] = tuple(refs)
    return settings


# ------------------------------------------------------------------ writing
def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"cannot write non-finite number {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise SpecError(f"cannot write {v!r} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def toml_table(name: str, mapping) -> list:
    """The lines of a TOML table ``[name]`` holding `mapping` (numbers, strings, booleans, lists, inline tables).

    Examples
    --------
    >>> toml_table("form_uncertainty", {"loss_scale": 0.05, "shape": 0.2})
    ['[form_uncertainty]', 'loss_scale = 0.05', 'shape = 0.2']
    """
    return [f"[{name}]"] + [f"{_key(k)} = {_value(v)}" for k, v in mapping.items()]


def to_toml(model) -> str:
    """The spec of `model` as TOML text (reads back with :func:`bayescale.fitting.model.load_spec`).

    Examples
    --------
    >>> from bayescale.fitting.model import ScalingModel
    >>> print(to_toml(ScalingModel("power_n", pooling={"E": "partial"}, form_uncertainty=None)))
    law = "power_n"
    likelihood = "student_t"
    form_uncertainty = false
    <BLANKLINE>
    [pooling]
    E = "partial"
    <BLANKLINE>
    """
    d = model.to_dict()
    lines = []
    for key in ("name", "description", "references"):
        if key in d:
            lines.append(f"{key} = {_value(d[key])}")
    if isinstance(d["law"], str):
        lines.append(f"law = {_value(d['law'])}")
    lines.append(f"likelihood = {_value(d['likelihood'])}")
    if d.get("form_uncertainty") is False:
        lines.append("form_uncertainty = false")
    if "within_run" in d:
        lines.append(f"within_run = {_value(d['within_run'])}")
    if d.get("undertuned"):
        lines.append("undertuned = true")
    if isinstance(d["law"], dict):
        law = dict(d["law"])
        params = law.pop("parameters")
        lines += ["", *toml_table("law", law)]
        lines += ["", *toml_table("law.parameters", params)]
    for table in ("priors", "pooling", "form_uncertainty"):
        if d.get(table) or (table == "pooling" and d.get(table) == {}):  # an empty [pooling]: every parameter shared
            lines += ["", *toml_table(table, d[table])]
    return "\n".join(lines) + "\n"
