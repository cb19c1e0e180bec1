"""Citations of benchmarks/RESULTS.md in the code resolve (issue 20, section 5).

Code and benchmark scripts cite a RESULTS section as `benchmarks/RESULTS.md#anchor`, where the anchor
is an `<a id="anchor"></a>` line of RESULTS.md (each log section has one, stable across reorderings).
A citation by a section's title in quotes (`benchmarks/RESULTS.md, 'title'`, the older form) must at
least name a heading's words; a bare mention of the file cites no section and is not checked.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SEARCHED = [ROOT / "scratch_ae", ROOT / "benchmarks"]
SUFFIXES = {".py", ".md"}


def results_text():
    return RESULTS.read_text(encoding="utf-8")


def anchors():
    return set(re.findall(r'<a id="([^"]+)"></a>', results_text()))


def headings():
    """Every heading of RESULTS.md, lower case, without Markdown emphasis or code marks."""
    return [re.sub(r"[`*]", "", line.lstrip("#").strip()).lower()
            for line in results_text().splitlines() if line.startswith("#")]


def cited_files():
    for top in SEARCHED:
        for path in sorted(top.rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and path != RESULTS and ".venv" not in path.parts:
                yield path


def joined(text):
    """The text with line breaks inside comments and docstrings folded to one space, so a quoted
    title that wraps onto the next line (after '#' or an indent) reads as one string."""
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)


def citations():
    """(file, kind, value) for every anchor or quoted-title citation of RESULTS.md."""
    out = []
    for path in cited_files():
        text = joined(path.read_text(encoding="utf-8", errors="replace"))
        rel = path.relative_to(ROOT)
        out += [(rel, "anchor", a) for a in re.findall(r"RESULTS\.md#([A-Za-z0-9_.-]+)", text)]
        out += [(rel, "title", t) for _, t in re.findall(r"RESULTS\.md,\s*(['\"])((?:(?!\1).){3,200}?)\1", text)]
    return out


def test_every_log_section_has_one_anchor_and_anchors_are_unique():
    text = results_text()
    ids = re.findall(r'<a id="([^"]+)"></a>', text)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("## "):
            before = [l for l in lines[max(0, n - 3):n] if l.strip()]
            assert before and before[-1].startswith('<a id="'), f"RESULTS.md line {n + 1}: {line!r} has no anchor above it"


def test_the_summary_comes_first_and_the_log_is_in_date_order():
    text = results_text()
    for first, then in (("quality", "speed"), ("speed", "log")):
        assert text.index(f'<a id="{first}">') < text.index(f'<a id="{then}">')
    dated = re.findall(r'<a id="(\d{4}-\d{2}-\d{2})[^"]*"></a>', text)
    assert dated and dated == sorted(dated)


def test_the_search_finds_citations():
    # the scan is only worth something if it sees the citations that are there
    found = citations()
    assert any(kind == "anchor" for _, kind, _ in found)
    assert any(str(path).startswith("benchmarks") for path, _, _ in found)


@pytest.mark.parametrize("path, value", [(str(p), v) for p, k, v in citations() if k == "anchor"])
def test_anchor_citation_resolves(path, value):
    assert value in anchors(), f"{path} cites benchmarks/RESULTS.md#{value}, which RESULTS.md has no <a id> for"


@pytest.mark.parametrize("path, value", [(str(p), v) for p, k, v in citations() if k == "title"])
def test_title_citation_names_a_heading(path, value):
    wanted = re.sub(r"[`*]", "", value).lower().strip(" .,;")
    assert any(wanted in h for h in headings()), (
        f"{path} cites benchmarks/RESULTS.md, {value!r}: no heading holds those words; cite it as "
        f"benchmarks/RESULTS.md#<anchor> instead")


def test_the_library_cites_results_sections_by_anchor_only():
    """In scratch_ae/ a RESULTS section is cited by its anchor (checked above), never by a quoted title,
    which a reordered or retitled log would silently orphan (issue 20, section 5)."""
    found = [(str(path), kind, value) for path, kind, value in citations() if path.parts[0] == "scratch_ae"]
    assert any(kind == "anchor" for _, kind, _ in found)  # the scan sees the library's citations
    by_title = [(path, value) for path, kind, value in found if kind == "title"]
    assert not by_title, by_title
