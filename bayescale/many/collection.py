"""The fits of a :func:`bayescale.many.batch.fit_many` batch: :class:`FitCollection`."""


from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.errors import BatchWarning, FileFormatError
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_seed as _check_seed
from .resume import INDEX_NAME, ResumeFolder, SETTING_NAMES, key_tuple, check_index, one_line
from ..base.errors import warn_user
from .io import load
from ..fitting.model import ScalingModel

__all__ = ["FitCollection"]

# ----------------------------------------------------------------------- collection
class FitCollection(Mapping):
    """The fits of a :func:`fit_many` batch: a mapping key -> ScalingFit, plus errors and tables.

    Attributes
    ----------
    fits : dict
        Key -> :class:`ScalingFit` for every key that was fitted (or resumed).
    errors : dict
        Key -> error message for every key that failed.
    keys_all : list
        Every key of the batch, in order of first appearance in the runs.
    by : list of str
        The key column(s).
    random_seed : int
        The batch seed; ``seeds`` maps each key to its own seed.
    resumed : tuple
        Keys loaded from the checkpoint folder rather than fitted.

    Examples
    --------
    >>> fits = bs.fit_many(model, runs, by="eval_set", random_seed=1)  # doctest: +SKIP
    >>> fits["mmlu"].summary()  # doctest: +SKIP
    >>> fits.summary()  # key x parameter, with a 'converged' column  # doctest: +SKIP
    >>> fits.predict({"N": [70e9], "D": [1.4e12]})  # doctest: +SKIP
    """

    def __init__(self, model, by, fits, errors, *, keys, random_seed, seeds=None, resumed=(), checkpoint_dir=None,
                 wall_seconds=float("nan")):
        self.model = model
        self.by = list(by)
        self.fits = dict(fits)
        self.errors = dict(errors)
        self.keys_all = list(keys)
        self.random_seed = random_seed
        self.seeds = dict(seeds or {})
        self.resumed = tuple(resumed)
        self.checkpoint_dir = checkpoint_dir
        self.wall_seconds = wall_seconds
        self._diagnostics = {}

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key):
        if key in self.fits:
            return self.fits[key]
        if key in self.errors:
            raise KeyError(f"key {key!r} failed: {self.errors[key]}")
        raise KeyError(f"no key {key!r}; keys: {', '.join(map(repr, self.keys_all[:20]))}"
                       f"{' ...' if len(self.keys_all) > 20 else ''}")

    def __iter__(self):
        return iter(self.fits)

    def __len__(self):
        return len(self.fits)

    # ------------------------------------------------------------------ status
    def diagnostics_of(self, key) -> dict:
        """:meth:`ScalingFit.diagnostics` of one key (computed once)."""
        if key not in self._diagnostics:
            self._diagnostics[key] = self.fits[key].diagnostics()
        return self._diagnostics[key]

    def converged(self, key) -> bool:
        """Whether the fit of `key` converged (R-hat, ESS and divergences; see ScalingFit.converged)."""
        return bool(self.diagnostics_of(key)["converged"])

    @property
    def not_converged(self) -> list:
        """Keys whose fits did not converge."""
        return [k for k in self.fits if not self.converged(k)]

    def _key_columns(self, key) -> dict:
        return dict(zip(self.by, key_tuple(key)))

    def _keyed(self, key, table: pd.DataFrame) -> pd.DataFrame:
        table = table.copy()
        for i, (col, value) in enumerate(self._key_columns(key).items()):
            name = col if col not in table.columns else f"key_{col}"
            table.insert(i, name, value)
        if "converged" not in table.columns:
            table["converged"] = self.converged(key)
        return table

    def _combine(self, make) -> pd.DataFrame:
        tables = [self._keyed(key, make(fit)) for key, fit in self.fits.items()]
        if not tables:
            return pd.DataFrame(columns=[*self.by, "converged"])
        out = pd.concat(tables, ignore_index=True)
        out.attrs.update(tables[0].attrs)
        return out

    # ------------------------------------------------------------------ tables
    def diagnostics(self) -> pd.DataFrame:
        """One row per key: ``status`` (ok / not converged / failed), convergence figures and any error."""
        rows = []
        for key in self.keys_all:
            row = self._key_columns(key)
            if key in self.fits:
                d = self.diagnostics_of(key)
                row.update(status="ok" if d["converged"] else "not converged", converged=d["converged"],
                           max_r_hat=d["max_r_hat"], min_ess_bulk=d["min_ess_bulk"],
                           min_ess_tail=d["min_ess_tail"], divergences=d["divergences"],
                           sampling_seconds=d["sampling_seconds"], resumed=key in self.resumed, error="")
            else:
                row.update(status="failed", converged=False, max_r_hat=np.nan, min_ess_bulk=np.nan,
                           min_ess_tail=np.nan, divergences=-1, sampling_seconds=np.nan, resumed=False,
                           error=self.errors.get(key, ""))
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self, prob=0.9) -> pd.DataFrame:
        """Posterior summaries of every key: one row per key and parameter, with ``converged``.

        Examples
        --------
        >>> fits.summary().query("parameter == 'alpha'")  # doctest: +SKIP
        """
        return self._combine(lambda fit: fit.summary(prob).reset_index())

    def predict(self, new_runs, prob=0.9, *, random_seed=None, columns=None) -> pd.DataFrame:
        """:meth:`ScalingFit.predict` for every key, stacked with the key column(s) first."""
        random_seed = _check_seed(random_seed)
        return self._combine(lambda fit: fit.predict(new_runs, prob, random_seed=random_seed, columns=columns))

    def allocate(self, budget, prob=0.9, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                 max_unique_tokens=None) -> pd.DataFrame:
        """:meth:`ScalingFit.allocate` for every key, stacked with the key column(s) first."""
        return self._combine(lambda fit: fit.allocate(budget, prob, flops_per_param_token=flops_per_param_token,
                                                      max_unique_tokens=max_unique_tokens))

    def risk(self, budget=None, *, target=None, plan=None, prob=0.9, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
             max_unique_tokens=None, random_seed=None) -> pd.DataFrame:
        """:meth:`ScalingFit.risk` for every key, stacked with the key column(s) first."""
        random_seed = _check_seed(random_seed)
        return self._combine(lambda fit: fit.risk(budget, target=target, plan=plan, prob=prob,
                                                  flops_per_param_token=flops_per_param_token,
                                                  max_unique_tokens=max_unique_tokens, random_seed=random_seed))

    def apply(self, func) -> pd.DataFrame:
        """Stack ``func(fit)`` (a DataFrame) over keys, with the key column(s) and ``converged``.

        Examples
        --------
        >>> fits.apply(lambda fit: fit.budget_for(1.9))  # doctest: +SKIP
        """
        return self._combine(func)

    # ------------------------------------------------------------------ output
    def save(self, folder) -> None:
        """Write every fit to `folder` as ``<key>-<hash>.nc`` with an ``index.json`` (see :meth:`load`)."""
        spec = self.model.to_dict()
        any_fit = next(iter(self.fits.values()), None)
        settings = {k: v for k, v in (any_fit.settings if any_fit else {}).items() if k in SETTING_NAMES}
        settings = {k: settings.get(k) for k in SETTING_NAMES}
        ckpt = ResumeFolder(folder, spec, settings, self.random_seed, self.by)
        for key, fit in self.fits.items():
            ckpt.store(key, fit)
        for key, text in self.errors.items():
            ckpt.record_error(key, text)

    @classmethod
    def load(cls, folder) -> "FitCollection":
        """Read the fits of a checkpoint folder (or of :meth:`save`) back into a collection.

        Fit files of the batch that the index does not list (a writer killed
        between the two writes) are loaded too, from the key each file
        carries, with a :class:`BatchWarning` naming them.

        Examples
        --------
        >>> fits = bs.FitCollection.load("fits/")  # doctest: +SKIP
        """
        folder = Path(folder)
        path = folder / INDEX_NAME
        if not path.is_file():
            raise FileFormatError(f"no {INDEX_NAME} in {str(folder)!r}; not a fit_many folder")
        try:
            index = json.loads(path.read_text())
            check_index(index)
            model = ScalingModel.from_dict(index["model"])
            by = list(index["by"])
            entries = {}
            for name, entry in index["fits"].items():
                if Path(name).name != name or not name.endswith(".nc"):
                    raise ValueError(f"fit file name {name!r} is not a file in the folder")
                entries[name] = tuple(entry["key"])
            failed = {tuple(json.loads(text_key)): str(text) for text_key, text in index.get("errors", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FileFormatError(f"{str(path)!r} is not a readable fit_many index ({exc})") from None

        def scalar(key):
            return key[0] if len(by) == 1 else key

        fits, keys = {}, []
        for name, key in entries.items():
            fit = load(folder / name)
            fit.model = model
            fits[scalar(key)] = fit
            keys.append(scalar(key))
        for key, fit in _unlisted_fits(folder, set(entries), index["model"], set(map(tuple, entries.values()))):
            fit.model = model
            fits[scalar(key)] = fit
            keys.append(scalar(key))
            failed.pop(key, None)
        errors = {}
        for key, text in failed.items():
            errors[scalar(key)] = text
            keys.append(scalar(key))
        seeds = {k: int(f.settings["random_seed"]) for k, f in fits.items()}
        return cls(model, by, fits, errors, keys=keys, random_seed=index.get("random_seed"), seeds=seeds,
                   resumed=tuple(fits), checkpoint_dir=folder)

    # ------------------------------------------------------------------ display
    def _warn(self):
        lines = []
        if self.errors:
            lines.append(f"{len(self.errors)} of {len(self.keys_all)} keys failed:")
            lines += [f"  {k!r}: {one_line(v)}" for k, v in list(self.errors.items())[:10]]
        bad = self.not_converged
        if bad:
            lines.append(f"{len(bad)} fits did not converge (R-hat > 1.01, bulk ESS < 400 or divergences): "
                         f"{', '.join(map(repr, bad[:10]))}{' ...' if len(bad) > 10 else ''}")
        if lines:
            lines.append("See collection.diagnostics() for every key.")
            warn_user("\n".join(lines), BatchWarning, stacklevel=3)

    def __repr__(self) -> str:
        n_bad = len(self.not_converged)
        head = (f"FitCollection: {self.model.law.name} law by {', '.join(self.by)}; {len(self.keys_all)} keys: "
                f"{len(self.fits) - n_bad} converged, {n_bad} not converged, {len(self.errors)} failed"
                + (f" ({len(self.resumed)} resumed from checkpoint)" if self.resumed else ""))
        lines = [head]
        for key, text in list(self.errors.items())[:5]:
            lines.append(f"  failed {key!r}: {one_line(text)}")
        lines.append("Next: fits.summary(), fits.diagnostics(), fits.predict(new_runs), fits[key]")
        return "\n".join(lines)


def _unlisted_fits(folder: Path, listed: set, spec: dict, keys: set) -> list:
    """``[(key, fit)]`` of the fit_many fits in `folder` that its index does not list, with one warning.

    A writer killed between saving a fit and updating the index (or an index
    written by an older version without the folder lock) leaves such files.
    A file is taken when it is a readable fit of a batch (it carries its key)
    with the index's model and a key not already listed; others are named in
    the warning and left alone.
    """
    found, skipped = [], []
    for path in sorted(folder.glob("*.nc")):
        if path.name in listed or not path.is_file():
            continue
        try:
            fit = load(path)
            key = tuple(json.loads(fit.idata.attrs["batch_key"]))
            same_model = json.loads(fit.idata.attrs["model_spec"]) == spec
        except (FileFormatError, KeyError, ValueError, TypeError) as exc:
            skipped.append(f"{path.name} ({one_line(str(exc), 100) or type(exc).__name__})")
            continue
        if not same_model:
            skipped.append(f"{path.name} (a fit of another model)")
        elif key in keys:
            skipped.append(f"{path.name} (key {list(key)} is listed under another file)")
        else:
            keys.add(key)
            found.append((key, fit))
    if found or skipped:
        lines = [f"the index of {str(folder)!r} does not list {len(found) + len(skipped)} fit file(s)"]
        if found:
            lines.append(f"loaded {len(found)} from the key each file carries: "
                         + ", ".join(repr(k[0] if len(k) == 1 else k) for k, _ in found[:10])
                         + (" ..." if len(found) > 10 else ""))
        if skipped:
            lines.append("left out: " + "; ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
        warn_user("; ".join(lines), BatchWarning, stacklevel=3)
    return found
