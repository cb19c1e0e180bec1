"""The derivation pages: derivations/*.md as they are, with the live code and its tests below each section.

derivations/ stays the source (it reads well on a code host); at every build this writes
docs/derivations/<name>.md from it (README.md becomes the section's index.md) with four changes,
all mechanical:

* an anchor line ``<a id="dense-backward"></a>`` becomes the MyST target ``(dense-backward)=``, so
  the page has that id and Sphinx can check the links to it (the anchors are unique over all files);
* a link ``[..](dense-autoencoder.md#dense-backward)`` becomes ``[..](#dense-backward)``, which MyST
  resolves to that target in whichever page holds it;
* at the end of every section with an ``Implemented by:`` line: an ``{implementation}`` block per
  name and a ``{checked-by}`` block per test of its ``Checked by:`` lines (docs/_ext/live_code.py
  shows their source and fails the build on a name that does not exist);
* under the title, links to the notebooks that cite this file.
"""
import re

from generated import DOCS, HEADER, ROOT, remove_stale, write_if_changed

SOURCE = ROOT / "derivations"
TARGET = DOCS / "derivations"

ANCHOR = re.compile(r'^\s*<a id="([^"]+)"></a>\s*$')  # on its own line, as tests/test_derivation_references.py reads it
IMPLEMENTED_BY = re.compile(r"^\s*Implemented by:(.*)$")
CHECKED_BY = re.compile(r"^\s*Checked by\b[^:]*:")
BACKTICKED = re.compile(r"`([^`]+)`")
HEADING = re.compile(r"^(#{1,6})\s")
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"\]\(([A-Za-z0-9_.-]+\.md)?#([A-Za-z0-9_.-]+)\)")
TEST_ID = re.compile(r"^tests/[\w/.-]+\.py(::[\w\[\]-]+)*$")


def page_name(path):
    return "index" if path.name == "README.md" else path.stem


def _sections(lines):
    """[(anchor, start, end)]: from each anchor line to the next anchor or the next heading of the
    same or a higher level than the section's own, outside code fences."""
    anchors, heading_level, fenced = [], {}, False
    for number, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        if fenced:
            continue
        if ANCHOR.match(line):
            anchors.append(number)
    sections = []
    for i, start in enumerate(anchors):
        limit = anchors[i + 1] if i + 1 < len(anchors) else len(lines)
        level, end, fenced = None, limit, False
        for number in range(start + 1, limit):
            line = lines[number]
            if FENCE.match(line):
                fenced = not fenced
            heading = None if fenced else HEADING.match(line)
            if heading and level is None:
                level = len(heading.group(1))
            elif heading and len(heading.group(1)) <= level:
                end = number
                break
        sections.append((ANCHOR.match(lines[start]).group(1), start, end))
    return sections


def _names(lines, start, end, pattern):
    """Backticked names on the lines matching `pattern`, and on the lines continuing that paragraph."""
    names, inside = [], False
    for line in lines[start:end]:
        if pattern.match(line):
            inside = True
        elif not line.strip():
            inside = False
        if inside:
            names += [n.strip() for n in BACKTICKED.findall(line)]
    return names


def live_code_block(implemented, tests):
    out = ["", "```{rubric} The code, live from this checkout", "```", ""]
    out += [f"```{{implementation}} {name}\n```\n" for name in implemented]
    if tests:
        out += ["```{rubric} The test that checks it", "```", ""]
        out += [f"```{{checked-by}} {test}\n```\n" for test in tests]
    return out


def transform(path, notebooks):
    lines = path.read_text(encoding="utf-8").splitlines()
    insert_at = {}
    for anchor, start, end in _sections(lines):
        implemented = [n for n in _names(lines, start, end, IMPLEMENTED_BY) if n.startswith("scratch_ae")]
        tests = [n for n in _names(lines, start, end, CHECKED_BY) if TEST_ID.match(n)]
        if implemented:
            insert_at.setdefault(end, []).extend(live_code_block(implemented, tests))
    out, fenced, title_done = [], False, False
    for number, line in enumerate(lines):
        if number in insert_at:
            out += insert_at[number]
        if FENCE.match(line):
            fenced = not fenced
        anchor = None if fenced else ANCHOR.match(line)
        if anchor:
            out.append(f"({anchor.group(1)})=")
            continue
        if not fenced:
            line = LINK.sub(lambda m: f"](#{m.group(2)})", line)
            line = line.replace("](README.md)", "](index.md)")
        out.append(line)
        if not title_done and line.startswith("# "):
            title_done = True
            if notebooks:
                links = ", ".join(f"[{title}](../notebooks/{stem}.ipynb)" for stem, title in notebooks)
                out += ["", f"*Worked through in the notebook{'s' if len(notebooks) > 1 else ''}:* {links}."]
    if len(lines) in insert_at:
        out += insert_at[len(lines)]
    return HEADER.format(tool="derivation_pages.py", source=f"derivations/{path.name}") + "\n".join(out) + "\n"


def reading_order():
    """The derivation files in the order derivations/README.md first links them, then the rest by name."""
    readme = (SOURCE / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in SOURCE.glob("*.md") if p.name != "README.md")
    linked = [m.group(1) for m in re.finditer(r"\]\(([A-Za-z0-9_.-]+\.md)", readme)]
    first = {name: linked.index(name) if name in linked else len(linked) for name in files}
    return sorted(files, key=lambda name: (first[name], name))


def toctree():
    entries = "\n".join(name[:-3] for name in reading_order())
    return f"\n```{{toctree}}\n:hidden:\n\n{entries}\n```\n"


def generate(app):
    from notebook_pages import notebooks_citing
    written = []
    for path in sorted(SOURCE.glob("*.md")):
        target = TARGET / f"{page_name(path)}.md"
        text = transform(path, notebooks_citing(path.name))
        if path.name == "README.md":
            text += toctree()
        write_if_changed(target, text)
        written.append(target)
    remove_stale(TARGET, written)


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
