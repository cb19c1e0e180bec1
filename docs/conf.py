"""Sphinx configuration of the scratch-ae site: derivations beside their live code, notebooks, labs, API.

Build (offline, warnings are errors):  python -m sphinx -W -b html docs docs/_build/html
The pages under docs/derivations/, docs/notebooks/ and docs/labs/ are generated at every build by
the extensions in docs/_ext/ from derivations/, notebooks/ and benchmarks/results/; edit those.
"""
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # autodoc and the live-code directives import this checkout's scratch_ae

import scratch_ae  # noqa: E402

project = "scratch-ae"
author = "the scratch-ae developers"
copyright = "scratch-ae developers, MIT licence"
release = version = scratch_ae.__version__

extensions = [
    "myst_nb",                  # MyST Markdown and the notebooks (myst-nb brings myst-parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # MathJax 3 copied into the site: no CDN, the site works with no network
    "sphinx_copybutton",
    "live_code",                # {implementation} and {checked-by}: the live source of a name, fails if missing
    "derivation_pages",         # docs/derivations/ from derivations/
    "notebook_pages",           # docs/notebooks/ from notebooks/
    "lab_pages",                # docs/labs/ from benchmarks/results/ and the lab modules' docstrings
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "jupyter_execute"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_ref_domains = ["std"]  # a link to #forward means the section, never the API entry of that name
suppress_warnings = []

# Notebooks: rendered as stored (no outputs are stored, so nothing runs and the build stays quick).
# SCRATCH_AE_DOCS_EXECUTE=1 runs them in quick mode at build time instead, outputs included.
if os.environ.get("SCRATCH_AE_DOCS_EXECUTE") == "1":
    os.environ["SCRATCH_AE_QUICK"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DOCS.parent), os.environ.get("PYTHONPATH")]))
    nb_execution_mode = "force"
    nb_execution_timeout = 300
    nb_execution_raise_on_error = True
else:
    nb_execution_mode = "off"

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "pydata_sphinx_theme"
html_title = "scratch-ae"
html_static_path = ["_static"]
html_css_files = ["scratch_ae.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": []}
html_favicon = "_static/favicon.svg"  # the browser asks for one; a 404 would be a console error
html_context = {"default_mode": "light"}  # an explicit mode: the theme logs an error for an empty one
copybutton_exclude = ".linenos, .gp"


# The library's docstrings are written for `help()` and the terminal (cs231n style: shapes, caches,
# the derivation they implement), not as reStructuredText; shown as written, in a literal block, they
# read as the author laid them out and docutils never re-flows them (or warns under -W).
def _docstring_as_written(app, what, name, obj, options, lines):
    if any(line.strip() for line in lines):
        lines[:] = ["::", ""] + ["    " + line for line in lines] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_as_written, priority=100)
