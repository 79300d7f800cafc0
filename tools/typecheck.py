"""mypy over the shipped packages, as ``kfpkit.<package>`` (``make typecheck``, part of ``make lint``).

The import namespace ``kfpkit`` is mapped onto top-level folders by setup.py's ``package_dir``, which mypy
cannot follow, so this tool builds a tree of symbolic links ``build/typecheck/kfpkit/<package> -> <package>/``
and runs mypy on it with the ``[tool.mypy]`` settings of pyproject.toml. Errors are reported with the
repository paths (``core/registry.py:12: error: ...``).

    .venv/bin/python -m tools.typecheck [PACKAGE ...]     (default: the packages of CHECKED)
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every folder that setup.py maps to kfpkit.<folder> (links for all, so that imports between them resolve)
PACKAGES = ("cli", "components", "core", "onebox", "pipelines", "serving")
# the packages the type checker must keep clean: every shipped one
CHECKED = ("core", "cli", "pipelines", "serving", "components", "onebox")


def link_tree(root: str) -> str:
    """Creates ``root/kfpkit/<package>`` links to the repository's package folders; returns ``root``."""
    namespace = os.path.join(root, "kfpkit")
    os.makedirs(namespace, exist_ok=True)
    for package in PACKAGES:
        link = os.path.join(namespace, package)
        target = os.path.join(REPO, package)
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(target, link)
    return root


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs mypy on ``argv``'s packages (default :data:`CHECKED`); returns mypy's exit status."""
    packages: List[str] = list(argv if argv is not None else sys.argv[1:]) or list(CHECKED)
    unknown = [p for p in packages if p not in PACKAGES]
    if unknown:
        print(f"typecheck: unknown package(s) {unknown}; choose from {list(PACKAGES)}", file=sys.stderr)
        return 2
    root = link_tree(os.path.join(REPO, "build", "typecheck"))
    command = [sys.executable, "-m", "mypy", "--config-file", os.path.join(REPO, "pyproject.toml")]
    for package in packages:
        command += ["-p", f"kfpkit.{package}"]
    env = dict(os.environ, MYPYPATH=root)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    prefix = os.path.join(root, "kfpkit") + os.sep
    for stream, text in ((sys.stdout, done.stdout), (sys.stderr, done.stderr)):
        stream.write(text.replace(prefix, "").replace("build/typecheck/kfpkit/", ""))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
