"""Functions of one job: no shipped function is longer than 80 lines, its docstring excluded.

``CONVENTIONS.md``: "a function over 80 lines is a sign that it has several". This test parses every module
that ships (``cli``, ``components``, ``core``, ``onebox``, ``pipelines``, ``serving``; not ``tests``,
``benchmarks``, ``tools`` or ``images``) and measures each function and method from its ``def`` line to its
last line, less the lines of its docstring. Decorators are not counted; nested functions are measured on
their own and count in the function around them too.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Iterator, List, Union

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("cli", "components", "core", "onebox", "pipelines", "serving")
MAX_LINES = 80

# Functions still being split into named steps by work in progress elsewhere (issue 16, item 5). The goal is
# an empty set: remove an entry in the change that brings its function to MAX_LINES or fewer
# (test_pending_functions_are_still_too_long fails until then). Never add one.
PENDING: frozenset[str] = frozenset()

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class FunctionLength:
    """One function's length in lines, docstring excluded."""

    path: str  # relative to the repository, with "/"
    qualname: str  # Class.method, outer.inner
    line: int
    lines: int

    @property
    def key(self) -> str:
        """``path::qualname``, the spelling of :data:`PENDING`."""
        return f"{self.path}::{self.qualname}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.qualname}: {self.lines} lines"


def body_lines(node: FunctionNode) -> int:
    """Lines from the ``def`` to the function's last line, less the docstring's lines."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def _functions(node: ast.AST, prefix: str) -> Iterator[tuple[str, FunctionNode]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            qualname = f"{prefix}{child.name}"
            yield qualname, child
            yield from _functions(child, f"{qualname}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def measure_source(source: str, path: str) -> List[FunctionLength]:
    """Every function and method of one module's source, with its length."""
    tree = ast.parse(source, filename=path)
    return [FunctionLength(path, name, node.lineno, body_lines(node)) for name, node in _functions(tree, "")]


def shipped_modules() -> List[str]:
    """Paths (relative, with "/") of every Python module under the shipped folders."""
    found = []
    for folder in SHIPPED:
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found += [
                os.path.relpath(os.path.join(root, f), REPO).replace(os.sep, "/") for f in files if f.endswith(".py")
            ]
    return sorted(found)


def measure_shipped() -> List[FunctionLength]:
    """Every function of every shipped module, longest first."""
    measured: List[FunctionLength] = []
    for path in shipped_modules():
        with open(os.path.join(REPO, path), encoding="utf-8") as fh:
            measured += measure_source(fh.read(), path)
    return sorted(measured, key=lambda f: (-f.lines, f.key))


def test_no_shipped_function_is_longer_than_80_lines_without_its_docstring():
    measured = measure_shipped()
    too_long = [f for f in measured if f.lines > MAX_LINES and f.key not in PENDING]
    assert not too_long, (
        f"{len(too_long)} function(s) longer than {MAX_LINES} lines (docstring excluded); split each into named "
        "steps:\n" + "\n".join(f"  {f}" for f in too_long) + f"\nlongest function: {measured[0]}"
    )


def test_pending_functions_are_still_too_long():
    lengths = {f.key: f for f in measure_shipped()}
    done = sorted(key for key in PENDING if key not in lengths or lengths[key].lines <= MAX_LINES)
    assert not done, f"remove from PENDING (no longer longer than {MAX_LINES} lines, or gone): " + ", ".join(
        f"{key} ({lengths[key].lines} lines)" if key in lengths else f"{key} (gone)" for key in done
    )


def test_every_shipped_folder_is_measured():
    modules = shipped_modules()
    for folder in SHIPPED:
        assert any(path.startswith(f"{folder}/") for path in modules), f"no module found under {folder}/"
    measured = measure_shipped()
    assert len(measured) > 500, f"only {len(measured)} functions measured"
    assert not any(path.startswith(("tests/", "benchmarks/", "tools/", "images/")) for path in modules)


def test_length_runs_from_def_to_last_line_less_docstring_and_names_methods_and_nested_functions():
    source = '''
import functools

@functools.cache
def documented(x):
    """One line."""
    return x


class Holder:
    async def method(self):
        """Two
        lines."""
        def inner():
            return 1

        return inner()


def plain():
    value = "not a docstring"
    return value
'''
    lengths = {f.qualname: (f.line, f.lines) for f in measure_source(source, "m.py")}
    assert lengths == {
        "documented": (5, 2),
        "Holder.method": (11, 5),
        "Holder.method.inner": (14, 2),
        "plain": (20, 3),
    }
