"""deploy does not import rollout: rollout builds on deploy (its KServe backends), never the other way round.

The imports are read from the source with ast, those inside functions included, so that a lazy import cannot
hide a cycle; the check follows kfpkit's own modules, so that a module deploy imports cannot bring rollout in.
"""

from __future__ import annotations

import ast
import glob
import os
from typing import Dict, List, Optional, Set

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = "kfpkit.components.deploy"
ROLLOUT = "kfpkit.components.rollout"


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[: -len(".py")].split(os.sep)
    if rel[-1] == "__init__":
        rel = rel[:-1]
    return ".".join(["kfpkit", *rel])


def _source_path(module: str) -> Optional[str]:
    """The repository file of a ``kfpkit.<folder>...`` module (setup.py maps kfpkit.<folder> to <folder>/)."""
    parts = module.split(".")[1:]
    if not parts:
        return None
    base = os.path.join(REPO, *parts)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def imported_modules(source: str, module: str, is_package: bool = False) -> List[str]:
    """Every module ``source`` imports, at any depth of its code, as absolute names.

    ``from A import b`` yields ``A`` and ``A.b`` (``b`` may be a submodule); relative imports are resolved
    against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: List[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def _imports_of(module: str) -> List[str]:
    path = _source_path(module)
    if path is None:
        return []
    with open(path, encoding="utf-8") as fh:
        return imported_modules(fh.read(), module, is_package=path.endswith("__init__.py"))


def _is_rollout(name: str) -> bool:
    return name == ROLLOUT or name.startswith(ROLLOUT + ".")


def rollout_import_chains(start: List[str]) -> Dict[str, List[str]]:
    """For every rollout module reached from ``start`` through kfpkit's own imports: the chain that reaches it."""
    chains: Dict[str, List[str]] = {}
    seen: Set[str] = set()
    stack = [[module] for module in start]
    while stack:
        chain = stack.pop()
        for name in _imports_of(chain[-1]):
            if _is_rollout(name):
                chains.setdefault(name, [*chain, name])
            elif name.startswith("kfpkit.") and name not in seen and _source_path(name) is not None:
                seen.add(name)
                stack.append([*chain, name])
    return chains


def _deploy_modules() -> List[str]:
    return sorted(_module_name(p) for p in glob.glob(os.path.join(REPO, "components", "deploy", "*.py")))


def test_no_module_of_deploy_imports_rollout_not_even_inside_a_function():
    modules = _deploy_modules()
    assert f"{DEPLOY}.logic" in modules and f"{DEPLOY}.traffic" in modules
    direct = {module: [n for n in _imports_of(module) if _is_rollout(n)] for module in modules}
    assert {module: names for module, names in direct.items() if names} == {}


def test_nothing_deploy_imports_brings_rollout_in():
    assert rollout_import_chains(_deploy_modules()) == {}


def test_the_import_reader_sees_function_level_relative_and_from_package_imports():
    source = (
        "def f():\n"
        "    from kfpkit.components.rollout.backends import TrafficBackend\n"
        "class C:\n"
        "    def g(self):\n"
        "        import kfpkit.components.rollout.analysis as a\n"
        "from ..rollout import kserve\n"
        "from kfpkit.components import rollout\n"
    )
    names = imported_modules(source, f"{DEPLOY}.logic")
    assert {n for n in names if _is_rollout(n)} == {
        "kfpkit.components.rollout.backends",
        "kfpkit.components.rollout.backends.TrafficBackend",
        "kfpkit.components.rollout.analysis",
        "kfpkit.components.rollout",
        "kfpkit.components.rollout.kserve",
    }


def test_the_chain_search_finds_rollout_behind_kfpkit_modules():
    # rollout's own modules import deploy; rollout reached from rollout's kserve module shows the search works
    chains = rollout_import_chains(["kfpkit.components.rollout.kserve"])
    assert chains["kfpkit.components.rollout.backends"][:2] == [
        "kfpkit.components.rollout.kserve",
        "kfpkit.components.rollout.backends",
    ]
