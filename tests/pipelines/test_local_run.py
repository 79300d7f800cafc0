"""The training pipeline end to end under kfp.local (SubprocessRunner, no venv), through the CLI.

Only the runs that need real tasks are here: a first and a second run against the same registry, the
bad-data run that stops before training and a missing source (ingest fails within seconds). The summary
and the progress output of every other case are covered from a recorded run (test_summary.py,
test_quiet_output.py).
"""

import os
import re
import subprocess
import sys

import pytest

from kfpkit.core import bootstrap
from kfpkit.core.model_card import read_model_card
from kfpkit.core.records import read_record
from kfpkit.core.registry import PushedModel
from kfpkit.core.run_summary import RunSummary

pytestmark = pytest.mark.slow

SOURCE = "synthetic://fraud?rows=6000&seed=3&fraud_rate=0.08"
PROGRESS = re.compile(r"^\[ *\d+\.\ds\] (?P<task>\S+) +(?P<what>started|done in|FAILED after)")


def _cli(tmp_path, *args, name="summary.json", timeout=600):
    summary_path = tmp_path / name
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "training",
        "--pipeline-root", str(tmp_path / "outputs"), "--summary-json", str(summary_path), *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    summary = read_record(str(summary_path), RunSummary) if summary_path.exists() else None
    return proc, summary


def _run(tmp_path, *extra, name="summary.json"):
    return _cli(
        tmp_path,
        "--source", SOURCE, "--label-column", "is_fraud", "--model-name", "fraud-detector",
        "--registry", str(tmp_path / "registry"),
        "--epochs", "3", "--batch-size", "256", "--min-pr-auc", "0.2", *extra,
        name=name,
    )  # fmt: skip


def _events(stdout):
    return [(m["task"], m["what"]) for m in map(PROGRESS.match, stdout.splitlines()) if m]


def test_first_run_pushes_version_1_and_a_second_run_is_judged_against_it(tmp_path):
    proc, summary = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary.status == "succeeded"  # read_record checked the record and its version
    assert summary.validation.passed is True
    assert summary.blessed is True and summary.infra_blessed is True
    assert summary.baseline_metrics is None
    assert summary.metrics_split == "test" and summary.metrics["pr_auc"] > 0.2
    assert "ece" in summary.metrics
    assert "eval" in summary.training_metrics and "test" not in summary.training_metrics
    assert summary.model_version == 1 and summary.model_created is True
    model_dir = summary.model_uri
    assert os.path.isfile(os.path.join(model_dir, "MANIFEST.json"))
    assert os.path.isdir(os.path.join(model_dir, "baseline"))
    card = read_model_card(model_dir)  # push took evaluate's evaluated_model: the test figures are in the version
    assert set(card.intervals["test"]) == set(bootstrap.METRICS)
    assert card.metrics["test"]["pr_auc"] == pytest.approx(summary.metrics["pr_auc"])
    assert (
        card.intervals["test"]["pr_auc"]["low"]
        < card.metrics["test"]["pr_auc"]
        < card.intervals["test"]["pr_auc"]["high"]
    )
    # quiet: a start and an end line per task, the summary, the full log in the run folder
    tasks = ["ingest", "validate", "train", "evaluate", "infra-validate", "push"]
    events = _events(proc.stdout)
    assert sorted(events) == sorted((t, w) for t in tasks for w in ("started", "done in"))
    assert len(proc.stdout.splitlines()) <= 40, proc.stdout
    assert "blessed: yes" in proc.stdout and model_dir in proc.stdout
    assert summary.run_log == os.path.join(summary.run_dir, "run.log")
    log_text = open(summary.run_log, encoding="utf-8").read()
    assert "[train] " in log_text and "\x1b[" not in log_text and "Executing task 'push'" in log_text

    # the second run finds version 1 as its baseline; an unreachable floor keeps it from being pushed
    proc2, summary2 = _run(tmp_path, "--framework", "sklearn", "--min-pr-auc", "0.999", name="summary2.json")
    assert proc2.returncode == 0, proc2.stdout[-3000:] + proc2.stderr[-3000:]
    assert summary2.baseline_metrics is not None and "pr_auc" in summary2.baseline_metrics
    assert any("baseline" in r for r in summary2.blessing_reasons)
    assert any("0.999" in r for r in summary2.blessing_reasons)
    assert summary2.blessed is False and summary2.model_uri is None
    assert "push" not in summary2.tasks and "pushed: nothing" in proc2.stdout
    pointer = read_record(str(tmp_path / "registry" / "fraud-detector" / "LATEST_BLESSED.json"), PushedModel)
    assert pointer.version == 1 and pointer.model_uri == model_dir


def test_missing_source_file_prints_the_failed_tasks_log_tail_and_exits_1(tmp_path):
    proc, summary = _cli(
        tmp_path, "--source", str(tmp_path / "nope.csv"), "--label-column", "y", "--model-name", "m",
        "--registry", str(tmp_path / "registry"), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert summary.status == "failed" and summary.failed_task == "ingest" and summary.model_uri is None
    assert _events(proc.stdout) == [("ingest", "started"), ("ingest", "FAILED after")]
    tail = [line for line in proc.stdout.splitlines() if line.startswith("    | ")]
    assert 0 < len(tail) <= 20 and "nope.csv" in tail[-1]
    assert f"full log: {summary.run_log}" in proc.stdout
    assert "nope.csv" in open(summary.run_log, encoding="utf-8").read()


CURATED_SCHEMA = """
feature { name: "transaction_id" type: BYTES }
feature { name: "amount" type: FLOAT float_domain { min: 0.0 max: 50.0 } }
feature { name: "merchant_category" type: BYTES }
feature { name: "channel" type: BYTES }
feature { name: "country" type: BYTES }
feature { name: "hour" type: INT }
feature { name: "device" type: BYTES }
feature { name: "distance_from_home_km" type: FLOAT }
feature { name: "transactions_last_24h" type: INT }
feature { name: "account_age_days" type: INT }
feature { name: "is_fraud" type: INT }
"""


def test_data_violating_the_curated_schema_stops_before_training(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(CURATED_SCHEMA)
    proc, summary = _run(tmp_path, "--curated-schema-uri", str(schema))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary.validation.passed is False
    assert list(summary.validation.anomalies) == ["amount"]
    assert "train" not in summary.tasks and summary.model_uri is None
    assert "data validation: FAILED" in proc.stdout and "amount" in proc.stdout
    assert [t for t, _ in _events(proc.stdout)] == ["ingest", "ingest", "validate", "validate"]
