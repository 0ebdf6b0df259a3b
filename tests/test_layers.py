"""The package's layers: folders that are floors, and every import, at module level or inside a function, points
down or sideways.

The layers, lowest first, are listed in docs/guide/architecture.md. Each sub-package of bayescale/ is a floor
(``fitting`` holds two: the result objects below the models that build them). A module may import modules of
its own layer or below, never above, the import graph has no cycle, and neither has the graph of the folders.
"""

import ast
import functools
import pathlib

import pytest

import bayescale

PACKAGE = pathlib.Path(bayescale.__file__).parent

#: Floors of each folder (sub-package), lowest first; "" is the package's top (its __init__ and __main__).
FOLDERS = {"base": (0, 0), "core": (1, 1), "runs": (1, 1), "analysis": (2, 2), "fitting": (3, 4), "many": (5, 5),
           "across": (6, 6), "front": (7, 7), "": (8, 8)}

#: Layer of each module, lowest first. A new module must be placed here, inside its folder's floors.
LAYERS = {
    # 0 ground floor: errors, argument checks, constants, units, files, progress, where moved modules went
    "base.errors": 0, "base.version": 0, "base.validation": 0, "base.units": 0, "base.progress": 0, "base.files": 0,
    "base.figure": 0, "base.compiled": 0, "base.tablecheck": 0, "base.digest": 0, "base.moved": 0,
    # 1 array core: laws and their formulas, priors, allocation arithmetic, the form discrepancy
    "core.laws": 1, "core.formula": 1, "core.formulalaw": 1, "core.priors": 1, "core.extrapolation": 1, "core.form": 1,
    "core.shifts": 1, "core.allocation": 1, "core.reweighting": 1, "core.pooling": 1, "core.simulate": 1,
    "core.pointsearch": 1, "core.specs": 1, "core.discrepancy": 1, "core.assumptions": 1,
    # 1 runs: run tables read and checked, the bundled data sets, envelopes, undertuned runs
    "runs.readers": 1, "runs.columns": 1, "runs.data": 1, "runs.datasets": 1, "runs.corpus": 1, "runs.envelope": 1,
    "runs.undertuned": 1,
    # 2 the results contract and the analyses of one fit written against it
    "analysis.contract": 2, "analysis.predictive": 2, "analysis.planning": 2, "analysis.risk": 2,
    "analysis.rendering": 2, "analysis.document": 2, "analysis.plots": 2, "analysis.groups": 2,
    "analysis.conflicts": 2, "analysis.contrasts": 2, "analysis.selection": 2, "analysis.hierarchy": 2,
    "analysis.checks": 2, "analysis.nextrun": 2, "analysis.returns": 2, "analysis.taskplan": 2,
    # 3 result objects
    "fitting.results": 3, "fitting.loglik": 3, "fitting.fit": 3, "fitting.pointfit": 3,
    # 4 models and their samplers
    "fitting.graph": 4, "fitting.centring": 4, "fitting.modelpriors": 4, "fitting.modelruns": 4, "fitting.sampling": 4, "fitting.model": 4, "fitting.point": 4,
    "fitting.isoflop": 4, "fitting.envelope_fit": 4, "fitting.published": 4, "fitting.downstream": 4,
    "fitting.linkfit": 4, "fitting.publishedlaw": 4,
    # 5 many fits and fits on disk
    "many.io": 5, "many.executors": 5, "many.resume": 5, "many.collection": 5, "many.batch": 5,
    # 6 analyses across fits and refits
    "across.compare": 6, "across.backtest": 6, "across.calibration": 6, "across.sbc": 6, "across.trends": 6,
    "across.averaging": 6, "across.holdout": 6, "across.allocation_check": 6,
    # 7 front ends
    "front.commands": 7, "front.arguments": 7, "front.cli": 7, "front.report": 7,
}


@functools.cache
def _modules():
    """Dotted name (below ``bayescale``) -> file of every module and package of the package.

    A sub-package's ``__init__`` is named by the sub-package (``"base"``), the package's own by ``"__init__"``.
    """
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _folder(name):
    """The folder (sub-package) of a module; "" for the package's top."""
    if name in ("__init__", "__main__"):
        return ""
    return name.split(".")[0]


def _layer(name):
    if name in LAYERS:
        return LAYERS[name]
    return FOLDERS[_folder(name)][0]  # a folder's __init__, or the package's top


def _package_of(path):
    """Parts of the dotted name (below ``bayescale``) of the package a file's relative imports start from."""
    return list(path.relative_to(PACKAGE).parts[:-1])


def _resolve(dotted):
    """The module a dotted name below ``bayescale`` lands in: the longest prefix that is a module."""
    modules = _modules()
    parts = dotted.split(".") if dotted else []
    while parts:
        name = ".".join(parts)
        if name in modules:
            return name
        parts.pop()
    return "__init__"


def _targets(node, path):
    """Modules of the package (or ``"__init__"``) that one import statement names; [] for any other node."""
    if isinstance(node, ast.ImportFrom):
        module = node.module.split(".") if node.module else []
        if node.level >= 1:
            base = _package_of(path)
            parts = base[: len(base) - (node.level - 1)] + module
        elif module[:1] == ["bayescale"]:
            parts = module[1:]
        else:
            return []
        return _names(parts, node.names)
    if isinstance(node, ast.Import):  # "import bayescale" reaches the package's top
        return [_resolve(alias.name.split(".", 1)[1]) if "." in alias.name else "__init__" for alias in node.names
                if alias.name.split(".")[0] == "bayescale"]
    return []


def _names(parts, aliases):
    """What ``from <parts> import <aliases>`` reaches: a module per imported module name, else the module itself."""
    here = ".".join(parts)
    out = []
    for alias in aliases:
        full = f"{here}.{alias.name}" if here else alias.name
        out.append(full if full in _modules() else _resolve(here))
    return out


@functools.cache
def _imports(name, path):
    """Modules of the package that `path` imports, with the line of each import (read once per session)."""
    tree = ast.parse(path.read_text())
    found = [(t, node.lineno) for node in ast.walk(tree) for t in _targets(node, path)]
    return [(t, line) for t, line in found if t != name]


def test_every_module_has_a_layer():
    plain = {n for n in _modules() if n not in ("__init__", "__main__") and n not in FOLDERS}
    missing = sorted(plain - set(LAYERS))
    assert not missing, f"place these modules in a layer of tests/test_layers.py: {missing}"
    gone = sorted(set(LAYERS) - plain)
    assert not gone, f"the layer map names modules that do not exist: {gone}"
    assert set(_folder(n) for n in _modules()) <= set(FOLDERS), "a folder without floors in tests/test_layers.py"


def test_the_folders_are_the_layers():
    """Each module's layer lies within its folder's floors, so a folder never holds a module of another floor."""
    outside = [f"{name} (layer {layer}) in {_folder(name)}/ (floors {FOLDERS[_folder(name)]})"
               for name, layer in LAYERS.items()
               if not FOLDERS[_folder(name)][0] <= layer <= FOLDERS[_folder(name)][1]]
    assert not outside, "\n".join(outside)


def test_imports_point_down():
    upward = []
    for name, path in _modules().items():
        for target, line in _imports(name, path):
            if _layer(target) > _layer(name):
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {target} "
                              f"(layer {_layer(name)} -> {_layer(target)})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_folders():
    """Folders on one floor (core and runs) may not lean on each other both ways."""
    graph = {}
    for name, path in _modules().items():
        for target, _ in _imports(name, path):
            if _folder(target) != _folder(name):
                graph.setdefault(_folder(name), set()).add(_folder(target))
    _assert_acyclic(graph)


def test_no_import_cycle():
    _assert_acyclic({name: {t for t, _ in _imports(name, path)} for name, path in _modules().items()})


def _assert_acyclic(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_private_name_crosses_a_module_boundary():
    """What one module uses of another is public there: no 'from .x import _name' and no 'x._name'."""
    crossing = []
    all_modules = _modules()
    for name, path in all_modules.items():
        tree = ast.parse(path.read_text())
        modules = {}  # local name -> package module, from "from .x import y [as z]" where y is a module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level >= 1 or (node.module or "").startswith("bayescale")):
                for alias, target in zip(node.names, _targets(node, path)):
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        crossing.append(f"{name}.py:{node.lineno} imports {alias.name} from {node.module or '.'}")
                    elif target.rsplit(".", 1)[-1] == alias.name and target in all_modules:
                        modules[alias.asname or alias.name] = target
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                crossing.append(f"{name}.py:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    assert not crossing, "\n".join(crossing)


#: Modules imported inside functions, with the measured reason: matplotlib costs 0.4-0.6 s at import.
IMPORTED_WHERE_USED = {"base.figure"}


def test_package_modules_are_imported_at_the_top():
    """Inside a function, a module of the package is imported only for a measured import-time reason."""
    late = set()
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            late |= {f"{name}.py:{node.lineno} imports {t}" for node in ast.walk(func)
                     for t in _targets(node, path) if t not in IMPORTED_WHERE_USED}
    assert not late, "import these at the top of the module (or measure and name the reason here): " + "; ".join(
        sorted(late))
