"""The performance component (python_func with tmp-path artifacts), ``kfpkit performance`` and the summary record."""

import subprocess
import sys

import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, Metrics

from kfpkit.components import images
from kfpkit.components.performance.component import performance
from kfpkit.components.performance.errors import PerformanceError
from kfpkit.core import payload_record
from kfpkit.core.performance_summary import PerformanceSummary
from kfpkit.core.preprocessing import PreprocessingSpec
from kfpkit.core.records import RecordError, read_record

MATURED = "2026-02-10T00:00:00Z"


@pytest.fixture(scope="module")
def concept(ph, tmp_path_factory):
    """Concept-drifted traffic as a payload log (the predictor's layout) and its labels as CSV."""
    folder = tmp_path_factory.mktemp("concept")
    generated = ph.traffic.generate(16_000, 8, "concept", days=8, change_day=4)
    frame = generated.frame
    spec = PreprocessingSpec.load(f"{ph.model_dir}/preprocessing.json")
    schema = payload_record.PayloadSchema(spec)
    records = [
        payload_record.PayloadRecord(
            request_id=row.request_id,
            instance=int(row.instance),
            timestamp=row.timestamp.isoformat(),
            model_name="fraud-detector",
            model_version="1",
            features={"segment": row.segment, "amount": row.amount, "velocity": row.velocity},
            score=float(row.score),
            label=int(row.score >= 0.2),
        )
        for row in frame.itertuples()
    ]
    log = folder / "payload-log"
    payload_record.write_partitioned(str(log), schema.records_table(records), "part-0.parquet")
    labels = folder / "labels.csv"
    ph.traffic.labels_frame(generated).to_csv(labels, index=False)
    return str(log), str(labels)


def _artifacts(tmp_path):
    return (
        Metrics(uri=str(tmp_path / "metrics")),
        HTML(uri=str(tmp_path / "report" / "report.html")),
        Artifact(uri=str(tmp_path / "summary" / "summary.json")),
    )


def test_component_returns_degraded_and_writes_the_summary_report_and_metrics(tmp_path, ph, concept):
    log, labels = concept
    metrics, report, summary = _artifacts(tmp_path)
    out = performance.python_func(
        model_uri=ph.model_dir,
        live_source=log,
        labels=[labels],
        label_column="is_fraud",
        metrics=metrics,
        report=report,
        summary=summary,
        maturity="20d",
        as_of=MATURED,
        resamples=100,
    )
    assert out is True
    record = read_record(summary.path, PerformanceSummary)
    assert record.degraded and summary.metadata["degraded"] is True
    assert summary.metadata["degraded_cohorts"][0] == "2026-01-05T00:00:00+00:00"
    assert [c.start[:10] for c in record.cohorts][:2] == ["2026-01-01", "2026-01-02"]
    assert record.label_counts.matched + record.label_counts.after_as_of == 16_000 and record.rows == 16_000
    assert metrics.metadata["degraded"] == 1 and metrics.metadata["cohorts"] == 8
    assert "realized.recall" in metrics.metadata and "estimated.recall" in metrics.metadata
    page = open(report.path, encoding="utf-8").read()
    assert page.count("<svg") >= 8 and "Degraded" in page


def test_component_fails_on_a_bad_label_without_writing_outputs(tmp_path, ph, concept):
    log, _ = concept
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"request_id": ["x"], "instance": [0], "is_fraud": [7], "labelled_at": ["2026-01-02"]}).to_csv(bad)
    metrics, report, summary = _artifacts(tmp_path)
    with pytest.raises(PerformanceError, match=r"bad\.csv: row 1, column 'is_fraud': bad label 7"):
        performance.python_func(
            model_uri=ph.model_dir,
            live_source=log,
            labels=[str(bad)],
            label_column="is_fraud",
            metrics=metrics,
            report=report,
            summary=summary,
            as_of=MATURED,
        )
    assert not (tmp_path / "summary" / "summary.json").exists() and not (tmp_path / "report" / "report.html").exists()


def test_component_runs_in_the_base_image():
    assert performance.component_spec.implementation.container.image == images.base_image()


def _cli(*args):
    cmd = [sys.executable, "-m", "kfpkit.cli", "performance", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def test_cli_exits_0_whether_degraded_or_not_and_2_on_bad_input(tmp_path, ph, concept):
    log, labels = concept
    common = ["--model-uri", ph.model_dir, "--live", log, "--labels", labels, "--label-column", "is_fraud"]
    matured = _cli(*common, "--maturity", "20d", "--as-of", MATURED, "--out", str(tmp_path / "a"),
                   "--summary-json", str(tmp_path / "a.json"), "--resamples", "100")  # fmt: skip
    assert matured.returncode == 0, matured.stderr
    assert "DEGRADED from 2026-01-05" in matured.stdout
    assert read_record(str(tmp_path / "a.json"), PerformanceSummary).degraded
    early = _cli(*common, "--as-of", "2026-01-09T00:00:00Z", "--out", str(tmp_path / "b"))
    assert early.returncode == 0, early.stderr
    assert "no cohort degraded" in early.stdout  # the labels have not matured; the estimate cannot see concept drift
    bad = _cli(*common, "--cohort", "daily", "--out", str(tmp_path / "c"))
    assert bad.returncode == 2 and "cohort 'daily' is not a positive duration" in bad.stderr
    missing = _cli(*common[:5], str(tmp_path / "absent.csv"), *common[6:], "--out", str(tmp_path / "d"))
    assert missing.returncode == 2 and "absent.csv" in missing.stderr and "not found" in missing.stderr


def test_the_business_key_joins_a_table_window(tmp_path, ph):
    generated = ph.traffic.generate(3000, 9, "none", days=2)
    live = tmp_path / "scored.jsonl"
    generated.frame.assign(timestamp=generated.frame["timestamp"].astype(str)).to_json(
        live, orient="records", lines=True
    )
    labels = tmp_path / "labels.parquet"
    ph.traffic.labels_frame(generated, key="business").to_parquet(labels)
    proc = _cli("--model-uri", ph.model_dir, "--live", str(live), "--labels", str(labels), "--label-column",
                "is_fraud", "--key", "transaction_id", "--as-of", "2026-03-01",
                "--out", str(tmp_path / "o"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = read_record(str(tmp_path / "o" / "summary.json"), PerformanceSummary)
    assert summary.key == ["transaction_id"] and summary.label_counts.matched == 3000
    assert all(c.mature and c.labelled == c.rows for c in summary.cohorts)


def test_the_summary_record_refuses_another_version_and_names_a_bad_field(tmp_path, ph, concept):
    log, labels = concept
    proc = _cli("--model-uri", ph.model_dir, "--live", log, "--labels", labels, "--label-column", "is_fraud",
                "--as-of", MATURED, "--out", str(tmp_path / "o"), "--resamples", "50")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    document = read_record(str(tmp_path / "o" / "summary.json"), PerformanceSummary).to_dict()
    assert PerformanceSummary.from_dict(document).to_dict() == document
    with pytest.raises(RecordError, match="record_version must be 1"):
        PerformanceSummary.from_dict({**document, "record_version": 2})
    document["cohorts"][0]["rows"] = "many"
    with pytest.raises(RecordError, match=r"cohorts\[0\]\.rows must be an integer"):
        PerformanceSummary.from_dict(document)
