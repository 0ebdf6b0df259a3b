"""Sphinx configuration of the bayescale documentation (``./dev docs`` builds it into ``docs/_build/html``).

Offline: no intersphinx, the notebooks are rendered from their stored outputs (never executed here).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bayescale  # noqa: E402

project = "bayescale"
author = "bayescale contributors"
copyright = "bayescale contributors"
release = version = bayescale.__version__

extensions = [
    "myst_nb",  # Markdown pages (myst-parser) and the stored notebooks
    "sphinx.ext.autodoc",
    "numpydoc",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "notebooks/execute.py", "**/.ipynb_checkpoints"]
root_doc = "index"

# Notebooks: shown with the outputs stored by ``./dev notebooks``; never executed by the docs build.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# API pages: numpydoc renders the docstrings; members are listed by the autodoc directives of api.md,
# not by numpydoc's own class-member tables (which would need autosummary stubs).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"bayescale {release}"
html_static_path = []
