r"""The derivations and the code cite each other, and both directions must hold.

Code -> derivation: a docstring line `Derivation: derivations/<file>.md#<anchor>`.
Derivation -> code: inside the section that starts at `<a id="<anchor>"></a>`
(and runs to the next such anchor, or the end of the file), a line
`Implemented by: \`package.module.Qualified.name\`` (several, comma-separated).

Docstrings are found by parsing scratch_ae's source with `ast` (so a module
that is never imported elsewhere is still scanned); names are resolved with
importlib and compared by identity, so a reference to an inherited or
re-exported object does not count for the function that carries the line.
Every failure message names the file, line and reference that is broken.
"""
import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "scratch_ae"
PACKAGE_DIR = ROOT / PACKAGE
DERIVATIONS = ROOT / "derivations"

REFERENCE = re.compile(r"Derivation:\s*(derivations/[^\s#`]+?\.md)(?:#([A-Za-z0-9_.-]+))?(?=[\s`.,;)]|$)")
ANCHOR = re.compile(r'^\s*<a id="([^"]+)"></a>')  # on its own line, so examples in prose do not count
IMPLEMENTED_BY = re.compile(r"^\s*Implemented by:(.*)$")
BACKTICKED = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s#]*\.md)?#([^)\s]+)\)")

# Methods that compute a gradient or apply an update: each must cite its derivation.
GRADIENT_METHODS = ("backward", "gradient")
UPDATE_METHODS = ("update",)


@dataclass(frozen=True)
class Reference:
    """One `Derivation:` line in one docstring."""
    module: str
    qualname: str | None  # None: the module's own docstring
    where: str            # "scratch_ae/layers/dense.py:62"
    file: str             # "derivations/dense-autoencoder.md"
    anchor: str | None

    @property
    def dotted(self):
        return self.module if self.qualname is None else f"{self.module}.{self.qualname}"

    @property
    def text(self):
        return f"Derivation: {self.file}" + (f"#{self.anchor}" if self.anchor else "")


@dataclass(frozen=True)
class Implementer:
    """One name on an `Implemented by:` line."""
    file: str    # "derivations/dense-autoencoder.md"
    line: int
    anchor: str | None  # None: the line is not inside any anchored section
    name: str

    @property
    def where(self):
        return f"{self.file}:{self.line}"


# ---------------------------------------------------------------------------- scanning the code
def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_sources():
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _docstring_node(node):
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0].value
    return None


def _walk_definitions(node, prefix, in_function=False):
    """Yield (qualname, node, in_function) for every class and function under `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            qualname = f"{prefix}.{child.name}" if prefix else child.name
            yield qualname, child, in_function
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            inner = f"{qualname}.<locals>" if is_function else qualname
            yield from _walk_definitions(child, inner, in_function or is_function)
        elif not isinstance(child, (ast.Lambda,)):
            yield from _walk_definitions(child, prefix, in_function)


def _references_in(docstring_node, module, qualname, path):
    if docstring_node is None:
        return []
    refs = []
    for offset, line in enumerate(docstring_node.value.splitlines()):
        for match in REFERENCE.finditer(line):
            where = f"{path.relative_to(ROOT)}:{docstring_node.lineno + offset}"
            refs.append(Reference(module, qualname, where, match.group(1), match.group(2)))
    return refs


def docstring_references():
    """Every `Derivation:` line in every docstring under scratch_ae/ (module, class and function docstrings)."""
    refs = []
    for path in package_sources():
        module = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        refs += _references_in(_docstring_node(tree), module, None, path)
        for qualname, node, _ in _walk_definitions(tree, ""):
            refs += _references_in(_docstring_node(node), module, qualname, path)
    return refs


def _is_abstract(function_node):
    """True when the body (after any docstring) is just `raise NotImplementedError[...]`."""
    body = function_node.body[1:] if _docstring_node(function_node) is not None else function_node.body
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def methods_needing_a_derivation():
    """(module, qualname, where, reason) of every concrete backward/gradient, and every Optimizer.update."""
    from scratch_ae.optimizers.base import Optimizer
    found = []
    for path in package_sources():
        module = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for qualname, node, in_function in _walk_definitions(tree, ""):
            if not isinstance(node, ast.ClassDef) or in_function:
                continue
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or _is_abstract(item):
                    continue
                where = f"{path.relative_to(ROOT)}:{item.lineno}"
                if item.name in GRADIENT_METHODS:
                    found.append((module, f"{qualname}.{item.name}", where, f"a `{item.name}` method"))
                elif item.name in UPDATE_METHODS:
                    cls = resolve(f"{module}.{qualname}")
                    if inspect.isclass(cls) and issubclass(cls, Optimizer):
                        found.append((module, f"{qualname}.{item.name}", where, "an Optimizer's `update`"))
    return found


# ---------------------------------------------------------------------------- resolving names
class Unresolvable(Exception):
    pass


def _unwrap(obj):
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if inspect.ismethod(obj):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    return obj


def resolve(dotted):
    """The object a dotted path names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module_path = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name and (module_path == exc.name or module_path.startswith(exc.name + ".")):
                continue  # this prefix is not a module: try a shorter one
            raise Unresolvable(f"importing {module_path} failed: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - report any import failure as the broken reference
            raise Unresolvable(f"importing {module_path} raised {type(exc).__name__}: {exc}") from None
        for i, attr in enumerate(parts[split:], start=split):
            owner = obj
            raw = inspect.getattr_static(owner, attr, None) if inspect.isclass(owner) else None
            obj = raw if raw is not None else getattr(owner, attr, None)
            if obj is None:
                raise Unresolvable(f"{'.'.join(parts[:i])} has no attribute {attr!r}")
            obj = _unwrap(obj)
        return obj
    raise Unresolvable(f"no importable module in {dotted!r}")


def defined_as(obj):
    """The dotted path where `obj` is defined (module + qualname), or None for non-definitions."""
    if inspect.ismodule(obj):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or qualname is None:
        return None
    return f"{module}.{qualname}"


def own_docstring(obj):
    """The object's own docstring (never inherited, unlike inspect.getdoc)."""
    return obj.__doc__ or ""


# ---------------------------------------------------------------------------- scanning the Markdown
def derivation_files():
    return sorted(DERIVATIONS.glob("*.md"))


def anchors_in(path):
    """[(anchor, line number)] in file order."""
    return [(m.group(1), number) for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            for m in ANCHOR.finditer(line)]


def implementers_in(path):
    """Every name on every `Implemented by:` line, with the anchored section it sits in."""
    result, anchor = [], None
    rel = str(path.relative_to(ROOT))
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = ANCHOR.match(line)
        if found:
            anchor = found.group(1)
        match = IMPLEMENTED_BY.match(line)
        if match:
            names = BACKTICKED.findall(match.group(1))
            if not names:
                result.append(Implementer(rel, number, anchor, ""))
            result += [Implementer(rel, number, anchor, name.strip()) for name in names]
    return result


def section_implementers(file, anchor):
    """Names listed by `Implemented by:` lines in the section `file#anchor`."""
    path = ROOT / file
    return [imp.name for imp in implementers_in(path) if imp.anchor == anchor]


# ---------------------------------------------------------------------------- the tests
def test_the_scan_finds_the_references_the_code_is_known_to_carry():
    """Guards the scanner itself: if it found nothing, every other test here would pass vacuously."""
    cited = {(ref.dotted, f"{ref.file}#{ref.anchor}") for ref in docstring_references()}
    for expected in [("scratch_ae.layers.dense.Dense.backward", "derivations/dense-autoencoder.md#dense-backward"),
                     ("scratch_ae.losses.BCEWithLogitsLoss.backward", "derivations/losses.md#bce-with-logits"),
                     ("scratch_ae.optimizers.adam.Adam.update", "derivations/optimizers.md#adam"),
                     ("scratch_ae.models.base.AutoencoderBase.loss_and_grads",
                      "derivations/dense-autoencoder.md#autoencoder-backward")]:
        assert expected in cited, f"scanner missed {expected}; it found {sorted(cited)}"
    names = {imp.name for path in derivation_files() for imp in implementers_in(path)}
    assert "scratch_ae.layers.dense.Dense.backward" in names, sorted(names)


def test_every_docstring_derivation_reference_points_to_an_existing_file_and_anchor():
    problems = []
    for ref in docstring_references():
        path = ROOT / ref.file
        if not path.is_file():
            problems.append(f"{ref.where} {ref.dotted}: `{ref.text}` -> {ref.file} does not exist")
            continue
        if ref.anchor is None:
            continue  # a file-level reference (e.g. a module docstring): the file existing is enough
        anchors = [a for a, _ in anchors_in(path)]
        if ref.anchor not in anchors:
            problems.append(f"{ref.where} {ref.dotted}: `{ref.text}` -> no <a id=\"{ref.anchor}\"></a> in "
                            f"{ref.file} (its anchors: {', '.join(anchors) or 'none'})")
    assert not problems, "broken Derivation: references\n" + "\n".join(problems)


def test_every_docstring_derivation_reference_resolves_to_a_section_naming_it():
    problems = []
    for ref in docstring_references():
        path = ROOT / ref.file
        if ref.anchor is None or not path.is_file() or ref.anchor not in [a for a, _ in anchors_in(path)]:
            continue  # reported by the test above
        try:
            carrier = resolve(ref.dotted)
        except Unresolvable as exc:
            problems.append(f"{ref.where} {ref.dotted}: cannot import the object carrying `{ref.text}` ({exc})")
            continue
        listed = section_implementers(ref.file, ref.anchor)
        matching = []
        for name in listed:
            try:
                if resolve(name) is carrier:
                    matching.append(name)
            except Unresolvable:
                pass  # reported by the reverse test
        if not matching:
            problems.append(f"{ref.where} {ref.dotted}: cites {ref.file}#{ref.anchor}, but that section's "
                            f"`Implemented by:` lines name {', '.join(listed) or 'nothing'}; "
                            f"add `{ref.dotted}` there")
    assert not problems, "sections that do not name the code citing them\n" + "\n".join(problems)


def test_every_implemented_by_name_resolves_to_a_function_whose_docstring_cites_that_section():
    problems = []
    for path in derivation_files():
        for imp in implementers_in(path):
            if imp.anchor is None:
                problems.append(f"{imp.where}: `Implemented by:` line before any <a id=...></a> anchor; "
                                f"it belongs to no section")
                continue
            if not imp.name:
                problems.append(f"{imp.where} (#{imp.anchor}): `Implemented by:` line names no `dotted.path`")
                continue
            try:
                obj = resolve(imp.name)
            except Unresolvable as exc:
                problems.append(f"{imp.where} (#{imp.anchor}): `{imp.name}` does not resolve ({exc})")
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)):
                problems.append(f"{imp.where} (#{imp.anchor}): `{imp.name}` is a {type(obj).__name__}, "
                                f"not a function, method, class or module")
                continue
            home = defined_as(obj)
            if home != imp.name:
                problems.append(f"{imp.where} (#{imp.anchor}): `{imp.name}` is defined as `{home}` "
                                f"(inherited or re-exported); name it where it is defined")
                continue
            wanted = f"{imp.file}#{imp.anchor}"
            cited = [f"{m.group(1)}#{m.group(2)}" for m in REFERENCE.finditer(own_docstring(obj))]
            if wanted not in cited:
                problems.append(f"{imp.where} (#{imp.anchor}): the docstring of `{imp.name}` lacks "
                                f"`Derivation: {wanted}` (it cites {', '.join(cited) or 'nothing'})")
    assert not problems, "broken Implemented by: names\n" + "\n".join(problems)


def test_every_backward_gradient_and_optimizer_update_method_has_a_derivation():
    found = methods_needing_a_derivation()
    assert any(q == "Dense.backward" for _, q, _, _ in found), "the method scan found no Dense.backward"
    problems = []
    for module, qualname, where, reason in found:
        try:
            method = resolve(f"{module}.{qualname}")
        except Unresolvable as exc:
            problems.append(f"{where} {module}.{qualname}: cannot import it ({exc})")
            continue
        if not any(m.group(2) for m in REFERENCE.finditer(own_docstring(method))):
            problems.append(f"{where} {module}.{qualname} is {reason} but its docstring has no "
                            f"`Derivation: derivations/<file>.md#<anchor>` line")
    assert not problems, "gradient code without a derivation\n" + "\n".join(problems)


@pytest.mark.parametrize("path", derivation_files(), ids=lambda p: p.name)
def test_anchors_are_unique_within_each_derivation_file(path):
    seen = {}
    duplicates = []
    for anchor, line in anchors_in(path):
        if anchor in seen:
            duplicates.append(f"{path.relative_to(ROOT)}:{line}: anchor {anchor!r} already defined at line "
                              f"{seen[anchor]}")
        seen.setdefault(anchor, line)
    assert not duplicates, "\n".join(duplicates)


def _heading_slugs(text):
    """GitHub's automatic heading ids (lower case, punctuation dropped, spaces to hyphens)."""
    slugs = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))
    return slugs


def test_every_link_to_a_section_of_a_derivation_file_resolves():
    """`[..](file.md#anchor)` and `[..](#anchor)` links inside derivations/ point to a real section."""
    problems = []
    for path in derivation_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in LINK.finditer(line):
                target = path if not match.group(1) else (path.parent / match.group(1))
                if "://" in (match.group(1) or ""):
                    continue
                if not target.is_file():
                    problems.append(f"{path.relative_to(ROOT)}:{number}: link to missing file {match.group(1)}")
                    continue
                text = target.read_text(encoding="utf-8")
                anchors = {a for a, _ in anchors_in(target)} | _heading_slugs(text)
                if match.group(2) not in anchors:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: link to "
                                    f"{target.relative_to(ROOT)}#{match.group(2)}, which has no such anchor")
    assert not problems, "broken links between derivations\n" + "\n".join(problems)


# Words that only speed code says: a reference function that mentions one has grown a fast path.
# (Adam's flush of tiny values is not among them: it is a step of the reference update, derived in
# derivations/optimizers.md#subnormals; the layers have none.)
SPEED_WORDS = re.compile(r"\b(?:fast|numba|njit|thread\w*|threadpoolctl|KERNEL|engine\w*|nhwc|channels_last|"
                         r"split_run|transient)\b")
LAYER_SPEED_WORDS = re.compile(r"\bflush\w*")


def test_every_reference_function_a_derivation_names_is_the_plain_algorithm():
    """The reader's check (issue 20): follow a derivation's `Implemented by:` to a reference function
    (anything outside scratch_ae.fast) and find the algorithm there: no engine, thread or compiled-loop
    branch, no channels-last memory, no subnormal flush in its code (docstrings and comments aside)."""
    problems = []
    for path in derivation_files():
        for ref in implementers_in(path):
            if not ref.name.startswith(PACKAGE + ".") or ref.name.startswith(PACKAGE + ".fast.") \
                    or "fast" in ref.name.rsplit(".", 1)[-1]:  # fast_update: the optimizer's door to the engine
                continue
            obj = resolve(ref.name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            try:
                source = inspect.getsource(obj)
            except (OSError, TypeError):
                continue
            code = ast.unparse(_without_docstrings(ast.parse(inspect.cleandoc("\n" + source))))
            found = set(SPEED_WORDS.findall(code))
            if ref.name.startswith(PACKAGE + ".layers."):
                found |= set(LAYER_SPEED_WORDS.findall(code))
            found = sorted(found)
            if found:
                problems.append(f"{ref.file}:{ref.line} {ref.name} mentions {', '.join(found)}")
    assert not problems, "reference functions with speed code in them\n" + "\n".join(problems)


def _without_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return tree
