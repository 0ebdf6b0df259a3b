"""The README stays a short front door whose question table names real functions; the docs site builds cleanly."""

import argparse
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bayescale as bs
from bayescale.front.arguments import build_parser

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 160


def _question_table() -> list[str]:
    """The rows of the README's table under "Which function answers which question"."""
    text = README.read_text()
    section = text.split("## Which function answers which question", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return rows[2:]  # after the header and its rule


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; keep it at most {MAX_README_LINES} (move detail to docs/)"


def test_readme_question_table_names_exist():
    rows = _question_table()
    assert len(rows) >= 10
    names = set()
    for row in rows:
        for code in re.findall(r"`([^`]+)`", row):
            if code.startswith("bayescale "):  # a command line (fit.nc is a file there)
                continue
            names.update(re.findall(r"\b(bs|fit)\.([A-Za-z_][\w.]*)", code))
    assert ("fit", "budget_for") in names and ("bs", "contrast") in names
    for owner, dotted in sorted(names):
        obj = bs if owner == "bs" else bs.ScalingFit
        for part in dotted.split("."):
            assert hasattr(obj, part), f"README names {owner}.{dotted}, which does not exist"
            obj = getattr(obj, part)
        assert callable(obj), f"README names {owner}.{dotted}, which is not callable"


def test_readme_question_table_commands_exist():
    commands = set()
    for row in _question_table():
        for code in re.findall(r"`(bayescale [^`]+)`", row):
            commands.add(code.split()[1])
    assert commands >= {"risk", "recommend", "report", "summary", "fit"}
    known = next(a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert commands <= set(known), f"unknown subcommands: {commands - set(known)}"


def test_readme_links_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


_MISSING = [m for m in ("sphinx", "myst_nb", "numpydoc") if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(_MISSING), reason=f"the docs extra is not installed (missing: {', '.join(_MISSING)}); "
                                           "`./dev docs` installs it")
def test_docs_build_without_warnings(tmp_path):
    """The site builds as `./dev docs` builds it (offline, notebooks not executed): about 10-15 s on 2 cores."""
    out = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-5000:]
    assert not out.stderr.strip(), out.stderr[-5000:]
    for page in ("index.html", "api.html", "guide/form-uncertainty.html", "notebooks/01_quickstart.html"):
        assert (tmp_path / "html" / page).exists(), page
    api = (tmp_path / "html" / "api.html").read_text()
    for name in bs.__all__:
        if name != "__version__":
            obj = getattr(bs, name)
            where = obj.__name__ if inspect.ismodule(obj) else ""
            ids = (f'id="bayescale.{name}"', f'id="module-bayescale.{name}"', f'id="module-{where}"')
            assert any(i in api for i in ids), f"{name} has no entry in the API pages"
