"""Two directives that show the code as it is in this checkout, never a copy typed by hand.

``{implementation} scratch_ae.layers.conv.Conv2d.backward``
    imports scratch_ae, resolves the dotted name (the longest importable module, then attributes)
    and shows that definition's source from its file, with the file's own line numbers.
``{checked-by} tests/test_conv_layers.py::test_conv2d_backward_matches_finite_differences``
    shows that test function's source and the one command that runs just it (a whole test file
    may be named too: then its docstring and the command for the file).

A name that does not resolve, or a test that is not in its file, stops the build with an error
naming the page and the name: the page would otherwise show something that does not exist.
Each file read is registered as a dependency, so an incremental build redoes the pages whose
code changed.
"""
import ast
import importlib
import inspect
from pathlib import Path

from docutils import nodes
from sphinx.directives.code import container_wrapper
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


class NotFound(ExtensionError):
    pass


# ---------------------------------------------------------------------------- finding definitions
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
            raise NotFound(f"importing {module_path} failed: {exc}") from None
        for i, attr in enumerate(parts[split:], start=split):
            owner = obj
            raw = inspect.getattr_static(owner, attr, None) if inspect.isclass(owner) else None
            obj = raw if raw is not None else getattr(owner, attr, None)
            if obj is None:
                raise NotFound(f"`{dotted}`: {'.'.join(parts[:i])} has no attribute {attr!r}")
        return obj
    raise NotFound(f"`{dotted}`: no importable module in it")


def home_of(obj, dotted):
    """(source file, qualified name inside it) where `obj` is defined; qualname None for a module."""
    if inspect.ismodule(obj):
        return Path(obj.__file__), None
    for unwrap in ("__func__", "fget", "py_func", "__wrapped__"):  # static/class methods, properties, Numba
        obj = getattr(obj, unwrap, obj)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or qualname is None or "<locals>" in qualname:
        raise NotFound(f"`{dotted}` is a {type(obj).__name__}, not a function, class or module")
    return Path(importlib.import_module(module).__file__), qualname


def definition_lines(path, qualname):
    """(first line, last line, module docstring or None) of `qualname` in the file, decorators included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if qualname is None:
        return 1, len(path.read_text(encoding="utf-8").splitlines()), ast.get_docstring(tree)
    scope = tree
    for name in qualname.split("."):
        found = [node for node in getattr(scope, "body", [])
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name]
        if not found:
            raise NotFound(f"no definition of {qualname!r} in {path.relative_to(ROOT)}")
        scope = found[-1]  # the last definition wins, as at import time
    first = min([scope.lineno] + [d.lineno for d in scope.decorator_list])
    return first, scope.end_lineno, None


def source_block(path, first, last, caption, env):
    lines = path.read_text(encoding="utf-8").splitlines()
    code = "\n".join(lines[first - 1:last])
    block = nodes.literal_block(code, code, language="python", linenos=True,
                                highlight_args={"linenostart": first})
    env.note_dependency(str(path))
    return block, caption


# ---------------------------------------------------------------------------- the directives
class Implementation(SphinxDirective):
    """The live source of one dotted name from an `Implemented by:` line."""
    required_arguments = 1
    has_content = False

    def run(self):
        dotted = self.arguments[0].strip()
        try:
            path, qualname = home_of(resolve(dotted), dotted)
            first, last, _ = definition_lines(path, qualname)
        except NotFound as exc:
            raise ExtensionError(f"{self.get_location()}: Implemented by {exc}") from None
        rel = path.relative_to(ROOT)
        caption = f"{dotted}, {rel}, lines {first}-{last}"
        block, caption = source_block(path, first, last, caption, self.env)
        wrapper = container_wrapper(self, block, caption)
        wrapper["classes"].append("live-code")
        return [wrapper]


def _marks(node):
    """The pytest marks a decorator list or a `pytestmark = ...` value names (`slow`, `gpu`, ...)."""
    marks = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Attribute) \
                and item.value.attr == "mark":
            marks.add(item.attr)
    return marks


def test_marks(tree, function_node):
    marks = set()
    for decorator in getattr(function_node, "decorator_list", []):
        marks |= _marks(decorator)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in node.targets):
            marks |= _marks(node.value)
    return marks


class CheckedBy(SphinxDirective):
    """A test from a `Checked by:` line: its source and the command that runs just it."""
    required_arguments = 1
    has_content = False

    def run(self):
        node_id = self.arguments[0].strip()
        file, _, qualname = node_id.partition("::")
        path = ROOT / file
        if not path.is_file():
            raise ExtensionError(f"{self.get_location()}: Checked by `{node_id}`: {file} does not exist")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        marks = set()
        try:
            if qualname:
                first, last, _ = definition_lines(path, qualname.replace("::", "."))
                scope = tree
                for name in qualname.split("::"):
                    scope = [n for n in scope.body if getattr(n, "name", None) == name][-1]
                marks = test_marks(tree, scope)
        except NotFound as exc:
            raise ExtensionError(f"{self.get_location()}: Checked by `{node_id}`: {exc}") from None
        command = f"python -m pytest {file}"
        if qualname:
            command += f" -k {qualname.split('::')[-1]}"
        left_out = sorted(marks & {"slow", "gpu", "docs", "extended"})
        if left_out:
            command += f" -m {' or '.join(left_out)!r}" if len(left_out) > 1 else f" -m {left_out[0]}"  # the default selection leaves these out
        result = []
        if qualname:
            caption = f"{node_id}, lines {first}-{last}"
            block, caption = source_block(path, first, last, caption, self.env)
            wrapper = container_wrapper(self, block, caption)
            wrapper["classes"].append("checked-by")
            result.append(wrapper)
        else:
            self.env.note_dependency(str(path))
            doc = ast.get_docstring(tree) or ""
            para = nodes.paragraph()
            para += nodes.literal(file, file)
            para += nodes.Text(": " + " ".join(doc.split()) if doc else " (the whole file)")
            result.append(para)
        run = nodes.literal_block(command, command, language="bash")
        run_wrapper = container_wrapper(self, run, "run just this test")
        run_wrapper["classes"].append("test-command")
        result.append(run_wrapper)
        return result


def setup(app):
    app.add_directive("implementation", Implementation)
    app.add_directive("checked-by", CheckedBy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
