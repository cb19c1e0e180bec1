"""docs/labs/: one page per recorded lab run in benchmarks/results/ (a folder holding results.json).

Every number on a lab page is read from that results.json at build time and every figure is copied
from the run's folder (the anchor's figure, where the run recorded one, shown beside ours): nothing is
retyped, so a re-recorded run changes its page at the next build.
"""
import json
from pathlib import Path

from sphinx.errors import ExtensionError

from generated import DOCS, HEADER, ROOT, copy_if_changed, remove_stale, write_if_changed

RESULTS = ROOT / "benchmarks" / "results"
OUT = DOCS / "labs"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value)[:80].replace("`", "'") + "`"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows):
    columns = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _page(folder, written):
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    if not isinstance(results, dict):
        raise ExtensionError(f"{folder / 'results.json'}: expected a JSON object")
    title = results.get("title") or folder.name
    text = [HEADER.format(tool="lab_pages.py", source=f"benchmarks/results/{folder.name}/results.json"),
            f"# {title}\n", f"Recorded run: `benchmarks/results/{folder.name}/`.\n"]
    scalars = {k: v for k, v in results.items() if k != "title" and not isinstance(v, (list, dict))}
    if scalars:
        text += ["## Summary\n", _table([scalars]), ""]
    for key, value in results.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            text += [f"## {key.replace('_', ' ')}\n", _table(value), ""]
        elif isinstance(value, dict) and value:
            flat = {k: v for k, v in value.items()}
            text += [f"## {key.replace('_', ' ')}\n", _table([flat]), ""]
    figures = sorted(folder.rglob("*.png"))
    anchors = [f for f in figures if "anchor" in f.name.lower()]
    ours = [f for f in figures if f not in anchors]
    if figures:
        text.append("## Figures\n")
        if anchors:
            text.append("The anchor's figure (left) beside ours (right).\n")
        for figure in anchors + ours:
            target = OUT / folder.name / figure.relative_to(folder)
            copy_if_changed(figure, target)
            written.append(target)
            label = ("anchor: " if figure in anchors else "") + figure.stem.replace("-", " ")
            text += [f"```{{figure}} {target.relative_to(OUT).as_posix()}",
                     ":width: 48%", "", label, "```", ""]
    page = OUT / f"{folder.name}.md"
    write_if_changed(page, "\n".join(text) + "\n")
    written.append(page)
    return folder.name


def generate(app):
    written = []
    names = [_page(f, written) for f in sorted(RESULTS.iterdir()) if (f / "results.json").is_file()]
    if not names:
        raise ExtensionError(f"no lab results found under {RESULTS}")
    index = OUT / "index.md"
    write_if_changed(index, HEADER.format(tool="lab_pages.py", source="benchmarks/results/*/results.json")
                     + "# Labs\n\nEach recorded lab run, its numbers and figures read from its results.json at build time.\n\n"
                     + "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(names) + "\n```\n")
    written.append(index)
    remove_stale(OUT, written)


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
