"""Comparisons of kfpkit against named peers, one folder each. Not part of the kfpkit package.

``setup.py`` does not install this folder and no image copies it. Run a benchmark as a module from the
repository root (``python -m`` puts the current directory on ``sys.path``), e.g.
``.venv/bin/python -m benchmarks.serving.bench_serving``, or through its ``make bench-*`` target.
Subprocesses a benchmark starts get the repository root on ``PYTHONPATH`` from :func:`subprocess_env`.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """This process's environment plus ``extra``, with the repository root first on ``PYTHONPATH``.

    So that ``python -m benchmarks.…`` and ``locust -f benchmarks/…`` work in a child whatever its
    working directory.
    """
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
    return env
