"""Fixtures of the pipeline tests: the recorded kfp.local runs of ``recorded_run/`` (see its README)."""

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "recorded_run"


def _materialize(tmp_path: Path, label: str):
    """Copies recorded run ``label`` to ``tmp_path/outputs/<its run folder>``; returns (run_dir, stdout text).

    ``{RUN_DIR}`` and ``{REGISTRY}`` in the recorded files become the new run folder and
    ``tmp_path/registry``.
    """
    source = FIXTURES / label
    name = json.loads((source / "recorded.json").read_text())["run_dir_name"]
    run_dir = tmp_path / "outputs" / name
    registry = tmp_path / "registry"

    def fill(text: str) -> str:
        return text.replace("{RUN_DIR}", str(run_dir)).replace("{REGISTRY}", str(registry))

    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != "recorded.json":
            target = run_dir / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(fill(path.read_text(encoding="utf-8")), encoding="utf-8")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, fill((FIXTURES / f"{label}_stdout.txt").read_text(encoding="utf-8"))


@pytest.fixture
def recorded_run(tmp_path):
    """``recorded_run(label)`` -> (run_dir, the run's kfp.local stdout), copied under ``tmp_path``."""
    return lambda label: _materialize(tmp_path, label)


def edit_output(run_dir: Path, task: str, edit) -> None:
    """Rewrites ``run_dir/task/executor_output.json`` with ``edit(document)``."""
    path = run_dir / task / "executor_output.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


@pytest.fixture
def edit_task_output():
    return edit_output
