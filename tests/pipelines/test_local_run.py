"""The training pipeline end to end under kfp.local (SubprocessRunner, no venv), through the CLI."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SOURCE = "synthetic://fraud?rows=6000&seed=3&fraud_rate=0.08"


def _run(tmp_path, *extra, registry=None, name="summary.json"):
    summary_path = tmp_path / name
    cmd = [
        sys.executable, "-m", "kfpkit.pipelines.cli", "run", "training",
        "--source", SOURCE, "--label-column", "is_fraud",
        "--registry", str(registry or tmp_path / "registry"),
        "--pipeline-root", str(tmp_path / "outputs"),
        "--summary-json", str(summary_path),
        "--epochs", "3", "--min-pr-auc", "0.2",
        *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return proc, summary


def test_first_run_pushes_a_blessed_model_and_second_run_compares_against_it(tmp_path):
    proc, summary = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["status"] == "succeeded"
    assert summary["validation"]["passed"] is True
    assert summary["blessed"] is True and summary["infra_blessed"] is True
    assert summary["baseline_metrics"] is None
    assert summary["metrics"]["pr_auc"] > 0.2
    assert summary["model_version"] == 1
    model_dir = summary["model_uri"]
    assert os.path.isfile(os.path.join(model_dir, "MANIFEST.json"))
    assert os.path.isdir(os.path.join(model_dir, "baseline"))
    assert "blessed: yes" in proc.stdout and model_dir in proc.stdout

    # same data and seed: the second model is the baseline's equal, so it is blessed and pushed
    # idempotently (same content -> same version) or as version 2 if training is not bit-identical.
    proc2, summary2 = _run(tmp_path, name="summary2.json")
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert summary2["baseline_metrics"] is not None
    assert any("baseline" in r for r in summary2["blessing_reasons"])
    assert summary2["blessed"] is True


def test_unreachable_floor_runs_to_the_end_without_pushing(tmp_path):
    proc, summary = _run(tmp_path, "--framework", "sklearn", "--min-pr-auc", "0.999")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary["blessed"] is False
    assert summary["model_uri"] is None
    assert any("0.999" in r for r in summary["blessing_reasons"])
    assert not (tmp_path / "registry" / "fraud-detector" / "LATEST_BLESSED.json").exists()
    assert "pushed: nothing" in proc.stdout


def test_missing_source_file_fails_the_run_with_exit_code_1(tmp_path):
    summary_path = tmp_path / "s.json"
    cmd = [
        sys.executable, "-m", "kfpkit.pipelines.cli", "run", "training",
        "--source", str(tmp_path / "nope.csv"), "--label-column", "y",
        "--registry", str(tmp_path / "registry"), "--pipeline-root", str(tmp_path / "outputs"),
        "--summary-json", str(summary_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "failed" and summary["model_uri"] is None
    assert "nope.csv" in proc.stdout + proc.stderr


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
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary["validation"]["passed"] is False
    assert list(summary["validation"]["anomalies"]) == ["amount"]
    assert "train" not in summary["tasks"] and summary["model_uri"] is None
    assert "data validation: FAILED" in proc.stdout and "amount" in proc.stdout
