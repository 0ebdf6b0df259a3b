"""The package's layers: every import, at module level or inside a function, points down or sideways.

The layers, lowest first, are listed in docs/guide/architecture.md. A module may import modules of its own
layer or below, never above, and the import graph has no cycle.
"""

import ast
import pathlib

import pytest

import bayescale

PACKAGE = pathlib.Path(bayescale.__file__).parent

#: Layer of each module, lowest first. A new module must be placed here.
LAYERS = {
    # 0 ground floor: errors, argument checks, constants, units, files, progress
    "errors": 0, "version": 0, "validation": 0, "units": 0, "progress": 0, "files": 0, "figure": 0, "compiled": 0,
    "tablecheck": 0, "digest": 0,
    # 1 array core: laws and their formulas, priors, run data, allocation arithmetic, the form discrepancy
    "laws": 1, "formula": 1, "formulalaw": 1, "priors": 1, "readers": 1, "columns": 1, "data": 1, "extrapolation": 1,
    "form": 1, "shifts": 1, "allocation": 1, "reweighting": 1, "pooling": 1, "simulate": 1, "pointsearch": 1,
    "datasets": 1, "specs": 1, "envelope": 1, "undertuned": 1, "corpus": 1, "discrepancy": 1, "assumptions": 1,
    # 2 the results contract and the analyses of one fit written against it
    "contract": 2, "predictive": 2, "planning": 2, "risk": 2, "rendering": 2, "document": 2, "plots": 2, "groups": 2,
    "conflicts": 2, "contrasts": 2, "selection": 2, "hierarchy": 2, "checks": 2, "nextrun": 2, "returns": 2,
    "taskplan": 2,
    # 3 result objects
    "results": 3, "loglik": 3, "fit": 3, "pointfit": 3,
    # 4 models and their samplers
    "graph": 4, "centring": 4, "sampling": 4, "model": 4, "point": 4, "isoflop": 4, "envelope_fit": 4, "published": 4,
    "downstream": 4, "linkfit": 4, "publishedlaw": 4,
    # 5 many fits and fits on disk
    "io": 5, "executors": 5, "checkpoints": 5, "collection": 5, "batch": 5,
    # 6 analyses across fits and refits
    "compare": 6, "backtest": 6, "calibration": 6, "sbc": 6, "trends": 6, "averaging": 6, "holdout": 6,
    "allocation_check": 6,
    # 7 front ends
    "commands": 7, "arguments": 7, "cli": 7, "report": 7, "__init__": 7, "__main__": 7,
}


def _modules():
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        out[path.stem] = path
    for path in sorted(PACKAGE.glob("*/__init__.py")):
        out[path.parent.name] = path
    return out


def _targets(node, package_level):
    """Modules of the package (or ``"__init__"``) that one import statement names; [] for any other node."""
    if isinstance(node, ast.ImportFrom):
        if node.level == package_level:
            # "from . import name": a module, or else a name of the package's __init__
            return ([node.module.split(".")[0]] if node.module else
                    [a.name if a.name in _modules() else "__init__" for a in node.names])
        if node.level == 0 and node.module and node.module.split(".")[0] == "bayescale":
            parts = node.module.split(".")
            return [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
    elif isinstance(node, ast.Import):
        return [alias.name.split(".")[1] for alias in node.names
                if alias.name.split(".")[0] == "bayescale" and "." in alias.name]
    return []


def _package_level(path):
    return 2 if path.name == "__init__.py" and path.parent != PACKAGE else 1


def _imports(name, path):
    """Modules of the package that `path` imports, with the line of each import."""
    tree = ast.parse(path.read_text())
    found = [(t, node.lineno) for node in ast.walk(tree) for t in _targets(node, _package_level(path))]
    return [(t, line) for t, line in found if (t in _modules() or t == "__init__") and t != name]


def test_every_module_has_a_layer():
    missing = sorted(set(_modules()) - set(LAYERS))
    assert not missing, f"place these modules in a layer of tests/test_layers.py: {missing}"
    gone = sorted(set(LAYERS) - set(_modules()))
    assert not gone, f"the layer map names modules that do not exist: {gone}"


def test_imports_point_down():
    upward = []
    for name, path in _modules().items():
        for target, line in _imports(name, path):
            if LAYERS[target] > LAYERS[name]:
                upward.append(f"{name}.py:{line} imports {target} (layer {LAYERS[name]} -> {LAYERS[target]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = {name: {t for t, _ in _imports(name, path)} for name, path in _modules().items()}
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
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        modules = {}  # local name -> package module, from "from . import x [as y]"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level >= 1 or (node.module or "").startswith("bayescale")):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        crossing.append(f"{name}.py:{node.lineno} imports {alias.name} from {node.module or '.'}")
                    elif node.module in (None, "bayescale") and alias.name in _modules():
                        modules[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                crossing.append(f"{name}.py:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    assert not crossing, "\n".join(crossing)


#: Modules imported inside functions, with the measured reason: matplotlib costs 0.4-0.6 s at import.
IMPORTED_WHERE_USED = {"figure"}


def test_package_modules_are_imported_at_the_top():
    """Inside a function, a module of the package is imported only for a measured import-time reason."""
    late = set()
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            late |= {f"{name}.py:{node.lineno} imports {t}" for node in ast.walk(func)
                     for t in _targets(node, _package_level(path)) + _whole_package(node)
                     if t not in IMPORTED_WHERE_USED}
    assert not late, "import these at the top of the module (or measure and name the reason here): " + "; ".join(
        sorted(late))


def _whole_package(node):
    """``["bayescale"]`` for ``import bayescale`` (the package namespace, which :func:`_targets` leaves out)."""
    return ["bayescale"] if isinstance(node, ast.Import) and any(a.name == "bayescale" for a in node.names) else []
