"""Push is idempotent end to end: two identical ``kfpkit run training`` runs (same data and seed) leave one version."""

import os
import subprocess
import sys
from typing import Tuple

import pytest

from kfpkit.core.records import read_record
from kfpkit.core.registry import PushedModel, list_versions
from kfpkit.core.run_summary import RunSummary

pytestmark = pytest.mark.slow

SOURCE = "synthetic://fraud?rows=6000&seed=3&fraud_rate=0.08"
MODEL = "fraud-detector"


def _run(tmp_path, name: str) -> Tuple[RunSummary, str]:
    summary_path = tmp_path / f"{name}.json"
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "training",
        "--source", SOURCE, "--label-column", "is_fraud", "--model-name", MODEL,
        "--registry", str(tmp_path / "registry"), "--pipeline-root", str(tmp_path / "outputs"),
        "--epochs", "3", "--batch-size", "256", "--min-pr-auc", "0.2", "--summary-json", str(summary_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return read_record(str(summary_path), RunSummary), proc.stdout


def test_two_identical_training_runs_leave_one_version_and_the_second_says_so(tmp_path):
    first, _ = _run(tmp_path, "first")
    second, stdout = _run(tmp_path, "second")

    assert (first.model_version, first.model_created) == (1, True)
    assert (second.model_version, second.model_created, second.model_uri) == (1, False, first.model_uri)
    assert [entry.version for entry in list_versions(str(tmp_path / "registry"), MODEL)] == [1]
    assert "already in the registry, nothing pushed" in stdout
    pointer = read_record(str(tmp_path / "registry" / MODEL / "LATEST_BLESSED.json"), PushedModel)
    assert (pointer.version, pointer.created) == (1, False)
    # the two runs trained separately: their model directories differ in bytes (run name, time, durations)
    first_card = os.path.join(first.artifacts["train.model"], "model_card.json")
    second_card = os.path.join(second.artifacts["train.model"], "model_card.json")
    assert open(first_card, encoding="utf-8").read() != open(second_card, encoding="utf-8").read()
