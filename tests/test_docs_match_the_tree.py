"""The README's tables and the module docstrings name what the repository holds, and nothing it lacks."""

from __future__ import annotations

import ast
import functools
import glob
import os
import re
from typing import Dict, List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("cli", "components", "core", "onebox", "pipelines", "serving")
# top-level folders a repository path in prose may start with
TOP_LEVEL = (*SHIPPED, "benchmarks", "demo", "images", "manifests", "notebooks", "requirements", "tests", "tools")
# a repository path: a top-level folder, then path segments; or a Markdown file (README.md, ../shared/...)
PATH_TOKEN = re.compile(
    r"(?<![\w./<-])((?:\.\./shared/)?(?:" + "|".join(TOP_LEVEL) + r")/[\w./-]*[\w/]|(?:\.\./shared/)?[A-Z][A-Z_]+\.md)"
)


def _readme() -> str:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def _section_table(text: str, heading: str) -> List[List[str]]:
    """The cells of the first Markdown table after ``heading``."""
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # header and separator rows left out


def _component_folders() -> List[str]:
    return sorted(
        os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "components/*/component.py"))
    )


def _exists(path: str, base: str) -> bool:
    path = path.rstrip("/.")
    candidates = [os.path.join(REPO, path), os.path.join(base, path)]
    return any(os.path.exists(c) or glob.glob(c) for c in candidates)


def test_the_components_table_lists_every_component_folder_and_links_its_readme():
    rows = _section_table(_readme(), "## Components")
    linked = {}
    for row in rows:
        match = re.fullmatch(r"\[(\w+)\]\((components/(\w+)/README\.md)\)", row[0])
        assert match, f"components table row without a README link: {row[0]!r}"
        linked[match.group(1)] = match.group(2)
        assert os.path.isfile(os.path.join(REPO, match.group(2))), match.group(2)
    assert sorted(linked) == _component_folders()


def test_the_layout_table_names_every_package_folder_and_only_paths_that_exist():
    rows = _section_table(_readme(), "## Layout")
    folders = {re.sub(r"[`/]", "", row[0]) for row in rows}
    assert set(SHIPPED) <= folders, f"the layout table misses {sorted(set(SHIPPED) - folders)}"
    for row in rows:
        folder = re.sub(r"[`/]", "", row[0])
        assert os.path.isdir(os.path.join(REPO, folder)), f"the layout table names {folder}/, which does not exist"
        package = row[1].strip("`")
        if package.startswith("kfpkit."):
            assert package == f"kfpkit.{folder}", f"{folder}/ is {package} in the layout table"
        for name in re.findall(r"`([\w/.-]+\.(?:py|md|in|lock))`", row[2]):
            found = glob.glob(os.path.join(REPO, folder, "**", name), recursive=True)
            assert found, f"the layout table names {name} in {folder}/, which holds no such file"


@functools.lru_cache(maxsize=1)
def _module_docstrings() -> Dict[str, str]:
    out = {}
    for package in SHIPPED:
        for path in glob.glob(os.path.join(REPO, package, "**", "*.py"), recursive=True):
            with open(path, encoding="utf-8") as fh:
                docstring = ast.get_docstring(ast.parse(fh.read()))
            if docstring:
                out[os.path.relpath(path, REPO)] = docstring
    return out


@pytest.mark.parametrize("module", sorted(_module_docstrings()))
def test_a_module_docstring_names_only_files_that_exist(module):
    base = os.path.join(REPO, os.path.dirname(module))
    named = PATH_TOKEN.findall(_module_docstrings()[module])
    missing = [path for path in named if not _exists(path, base)]
    assert missing == [], f"{module}'s docstring names {missing}, which the repository does not hold"


def test_the_path_pattern_finds_repository_paths_and_shared_documents():
    text = "see components/push/README.md, core/registry.py and ../shared/ARCHITECTURE.md; not model_card.json"
    assert PATH_TOKEN.findall(text) == ["components/push/README.md", "core/registry.py", "../shared/ARCHITECTURE.md"]
