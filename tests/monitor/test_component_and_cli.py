"""The monitor component (python_func with tmp-path artifacts) and ``kfpkit monitor`` (module entry point)."""

import json
import subprocess
import sys

import pytest
from kfp.dsl import HTML, Artifact, Metrics

from kfpkit.components import images
from kfpkit.components.monitor.component import monitor
from kfpkit.components.monitor.logic import MonitorError
from kfpkit.core.drift_summary import DriftSummary
from kfpkit.core.records import read_record


def _artifacts(tmp_path):
    return (
        Metrics(uri=str(tmp_path / "metrics")),
        HTML(uri=str(tmp_path / "report" / "report.html")),
        Artifact(uri=str(tmp_path / "drift" / "drift.json")),
    )


def test_component_returns_the_verdict_and_writes_report_drift_json_and_metrics(tmp_path, model_dir, mh):
    live = mh.write_window(tmp_path / "live.parquet", 3000, seed=21, shift_names=["mean", "missing_rate"])
    metrics, report, drift = _artifacts(tmp_path)
    out = monitor.python_func(
        model_uri=model_dir, live_source=live, metrics=metrics, report=report, drift=drift, since="", until=""
    )
    assert out is True
    assert sorted(drift.metadata["drifted_features"]) == ["f00", "f03"]
    assert metrics.metadata["drift_detected"] == 1 and metrics.metadata["rows"] == 3000
    assert "f00.js" in metrics.metadata
    assert json.load(open(drift.path))["features"]["f03"]["metrics"]["missing_rate"]["drifted"] is True
    assert "<svg" in open(report.path, encoding="utf-8").read()
    assert json.load(open(drift.path))["drifted_features"] == drift.metadata["drifted_features"]


def test_component_fails_on_bad_input_without_writing_outputs(tmp_path, model_dir):
    metrics, report, drift = _artifacts(tmp_path)
    with pytest.raises(MonitorError, match="no such file"):
        monitor.python_func(
            model_uri=model_dir, live_source=str(tmp_path / "nope.csv"), metrics=metrics, report=report, drift=drift
        )
    assert not (tmp_path / "drift" / "drift.json").exists() and not (tmp_path / "report" / "report.html").exists()


def test_component_runs_in_the_base_image():
    assert monitor.component_spec.implementation.container.image == images.base_image()


def test_cli_exits_0_with_or_without_drift_and_2_on_bad_input(tmp_path, model_dir, mh):
    live = mh.write_window(tmp_path / "live.csv", 2000, seed=22, shift_names=["integer_rate"])
    cmd = [sys.executable, "-m", "kfpkit.cli", "monitor", "--model-uri", model_dir, "--live", live]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "out"), "--summary-json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = read_record(str(tmp_path / "s.json"), DriftSummary)
    assert summary.drift_detected is True and summary.drifted_features == ["i_poisson"]
    assert summary == read_record(str(tmp_path / "out" / "summary.json"), DriftSummary)
    assert "DRIFT in i_poisson" in proc.stdout
    bad = subprocess.run(
        [*cmd, "--out", str(tmp_path / "out2"), "--since", "yesterday"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "since 'yesterday' is not an ISO-8601 time" in bad.stderr
    assert not (tmp_path / "out2").exists()


def test_a_monitor_run_imports_neither_tensorflow_nor_torch_nor_pandas(tmp_path, model_dir, mh):
    live = mh.write_window(tmp_path / "live.parquet", 500, seed=23)
    code = (
        "import sys\n"
        "from kfpkit.cli import main as cli\n"
        f"argv = ['monitor', '--model-uri', {model_dir!r}, '--live', {live!r}, '--out', {str(tmp_path / 'o')!r}]\n"
        "assert cli.main(argv) == 0\n"
        "heavy = ('tensorflow', 'tensorflow_data_validation', 'torch', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
