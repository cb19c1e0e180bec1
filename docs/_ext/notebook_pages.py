"""The notebook pages: notebooks/*.ipynb rendered by myst-nb, and the list of them.

At every build the notebooks are copied into docs/notebooks/ (Sphinx reads only its source folder),
with one mechanical change in their Markdown cells: a link to a derivation's section,
``../derivations/dense-autoencoder.md#shallow-backward``, becomes ``#shallow-backward``, the
target that docs/_ext/derivation_pages.py gives that section. Outputs are whatever the notebook
file stores (the notebooks in this repository store none, so the build executes nothing unless
conf.py's SCRATCH_AE_DOCS_EXECUTE asks it to).
"""
import json
import re

from generated import DOCS, HEADER, ROOT, remove_stale, write_if_changed

SOURCE = ROOT / "notebooks"
TARGET = DOCS / "notebooks"
DERIVATION_LINK = re.compile(r"\]\((?:\.\./)?derivations/([A-Za-z0-9_.-]+\.md)(#[A-Za-z0-9_.-]+)?\)")


def notebooks():
    return sorted(SOURCE.glob("*.ipynb"))


def _markdown(nb):
    return ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in nb["cells"] if cell["cell_type"] == "markdown"]


def title(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for text in _markdown(nb):
        for line in text.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem


def notebooks_citing(derivation_file):
    """[(stem, title)] of the notebooks whose Markdown links to derivations/<derivation_file>."""
    found = []
    for path in notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        if any(m.group(1) == derivation_file for text in _markdown(nb) for m in DERIVATION_LINK.finditer(text)):
            found.append((path.stem, title(path)))
    return found


def _relink(text):
    def replace(match):
        page, anchor = match.groups()
        return f"]({anchor})" if anchor else f"](../derivations/{'index.md' if page == 'README.md' else page})"
    return DERIVATION_LINK.sub(replace, text)


def generate(app):
    written = []
    for path in notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                source = cell["source"]
                cell["source"] = _relink("".join(source) if isinstance(source, list) else source)
        target = TARGET / path.name
        write_if_changed(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    entries = "\n".join(path.stem for path in notebooks())
    index = (HEADER.format(tool="notebook_pages.py", source="notebooks/")
             + "# Notebooks\n\n"
             + "Each notebook pairs one derivation with its code on real MNIST images and checks every step "
             + "against the library and against finite differences. Run them with "
             + '`pip install -e ".[notebooks]" jupyter` and `jupyter lab notebooks/`; '
             + "`SCRATCH_AE_QUICK=1` makes them small (the test suite runs them that way: "
             + "`python -m pytest tests/test_notebooks.py`).\n\n"
             + "```{toctree}\n:maxdepth: 1\n\n" + entries + "\n```\n")
    target = TARGET / "index.md"
    write_if_changed(target, index)
    written.append(target)
    remove_stale(TARGET, written)


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
