"""A small benchmark model (LogisticRegression on 2000 synthetic rows) shared by the serving benchmark tests."""

from __future__ import annotations

import os

import pytest

from benchmarks.serving import models

TRAIN_ROWS = 2000


@pytest.fixture(scope="session")
def bench_model(tmp_path_factory) -> models.BenchModel:
    return models.build_bench_model(str(tmp_path_factory.mktemp("bench") / "model"), rows=TRAIN_ROWS)


@pytest.fixture(scope="session")
def mlserver_bin() -> str:
    """The mlserver executable of ``.venv-mlserver`` (tests that need it skip when it is not set up)."""
    from benchmarks.serving.bench_serving import default_mlserver_bin

    return default_mlserver_bin()


def _processes_mentioning(text: str) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            zombie = proc.info["status"] == psutil.STATUS_ZOMBIE
        except psutil.Error:
            continue
        if text in cmdline and proc.pid != os.getpid() and not zombie:
            found.append((proc.pid, cmdline))
    return found


@pytest.fixture()
def processes_mentioning():
    """``f(text)``: live processes whose command line contains ``text`` (to check that servers were stopped)."""
    return _processes_mentioning
