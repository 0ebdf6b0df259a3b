"""Where each module of the flat layout lives now, and the old names kept working for one release.

Up to version 0.1 the package was one folder: ``bayescale.risk``, ``bayescale.graph`` and so on. Its
modules now sit in sub-packages, one per floor of the layers (``docs/guide/architecture.md``). The old
dotted names still import: those of the public modules (the ones ``import bayescale`` binds, such as
``bayescale.laws`` or ``bayescale.risk``) silently, the others with a :class:`DeprecationWarning` that
names the new place. These aliases are kept for one release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings

__all__ = ["FOLDERS", "RENAMED", "NEW_NAMES", "new_name", "install"]

#: The modules of the flat layout, by the sub-package each moved to (lowest floor first); a record of that
#: move, not a map new modules join (``tests/test_layers.py`` holds the layers).
FOLDERS = {
    "base": "errors version validation units progress files figure compiled tablecheck digest".split(),
    "core": ("laws formula formulalaw priors extrapolation form shifts allocation reweighting pooling simulate "
             "pointsearch specs discrepancy assumptions").split(),
    "runs": "readers columns data datasets corpus envelope undertuned".split(),
    "analysis": ("contract predictive planning risk rendering document plots groups conflicts contrasts selection "
                 "hierarchy checks nextrun returns taskplan").split(),
    "fitting": ("results loglik fit pointfit graph centring sampling model point isoflop envelope_fit published "
                "downstream linkfit publishedlaw").split(),
    "many": "io executors resume collection batch".split(),
    "across": "compare backtest calibration sbc trends averaging holdout allocation_check".split(),
    "front": "commands arguments cli report".split(),
}

#: Modules renamed on the way: ``checkpoints`` held fit_many's resume folders, while checkpoint data means
#: the rows of one training run.
RENAMED = {"checkpoints": "resume"}

_OLD_NAMES = {new: old for old, new in RENAMED.items()}

#: ``bayescale.<module>`` of the flat layout -> its dotted name now.
NEW_NAMES = {f"bayescale.{_OLD_NAMES.get(m, m)}": f"bayescale.{pkg}.{m}" for pkg, mods in FOLDERS.items() for m in mods}

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def new_name(old: str) -> str | None:
    """The current dotted name of a module of the flat layout (or of a module inside one), else None.

    Examples
    --------
    >>> new_name("bayescale.risk")
    'bayescale.analysis.risk'
    >>> new_name("bayescale.analysis.risk") is None
    True
    """
    head, _, rest = old.partition(".")
    mod, _, tail = rest.partition(".")
    new = NEW_NAMES.get(f"{head}.{mod}")
    if new is None:
        return None
    return f"{new}.{tail}" if tail else new


def _warn_moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; import it from there (the old name is kept for one release)",
                  DeprecationWarning, skip_file_prefixes=(_PACKAGE_DIR, "<frozen importlib"))


class _Alias(importlib.abc.Loader):
    """Loads an old dotted name as the module now at its new one."""

    def __init__(self, old: str, new: str, public: bool):
        self.old, self.new, self.public = old, new, public

    def create_module(self, spec):
        if not self.public:
            _warn_moved(self.old, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the old dotted names of moved modules (and only those)."""

    def __init__(self, public: frozenset):
        self.public = public

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        loader = _Alias(fullname, new, fullname in self.public)
        return importlib.machinery.ModuleSpec(fullname, loader)


def install(public) -> None:
    """Let the old dotted names import; `public` names (``"bayescale.laws"``, ...) import without a warning."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder(frozenset(public)))


def old_attribute(name: str, public) -> object:
    """``bayescale.<name>`` for a module of the flat layout (module ``__getattr__`` of the package)."""
    new = NEW_NAMES.get(f"bayescale.{name}")
    if new is None:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    if f"bayescale.{name}" not in public:
        _warn_moved(f"bayescale.{name}", new)
    return importlib.import_module(new)
