"""The drift summary and the drift report: typed records written by the monitor, read by drift_alert."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from kfp.dsl import HTML, Artifact

from kfpkit.components.drift_alert.component import drift_alert
from kfpkit.components.monitor import logic
from kfpkit.core.drift_summary import DriftReport, DriftSummary
from kfpkit.core.records import RecordError, read_record


@pytest.fixture(scope="module")
def written(tmp_path_factory, model_dir, mh):
    """One monitor run over a window with a shifted mean and a new category, and the files it wrote."""
    tmp = tmp_path_factory.mktemp("drift-records")
    live = mh.write_window(tmp / "live.parquet", 3000, seed=41, shift_names=["mean", "new_category"], score=True)
    out = logic.OutputPaths.in_folder(str(tmp / "out"))
    return logic.run_monitor(model_dir, live, out), out


def test_the_summary_json_reads_back_as_the_summary_the_monitor_made(written):
    result, out = written
    summary = read_record(out.summary_json, DriftSummary)
    assert summary == result.summary()
    assert sorted(summary.drifted_features) == ["c10", "f00"] and summary.drift_detected
    assert summary.features["f00"].drifted and summary.score_drift is not None


def test_the_drift_json_reads_back_as_the_report_and_its_summary_is_the_summary_json(written):
    result, out = written
    report = read_record(out.drift_json, DriftReport)
    assert report == result.report()
    assert report.summary() == read_record(out.summary_json, DriftSummary)
    assert set(report.features["f00"].metrics) == {"js", "psi", "missing_rate"}
    assert report.features["c10"].unseen_values


@pytest.mark.parametrize("cls", [DriftSummary, DriftReport])
def test_a_record_round_trips_through_its_json(written, cls):
    result, _ = written
    record = result.summary() if cls is DriftSummary else result.report()
    assert cls.from_json(record.to_json()) == record
    assert record.to_dict()["record"] == cls.KIND and record.to_dict()["record_version"] == cls.VERSION


@pytest.mark.parametrize("cls", [DriftSummary, DriftReport])
def test_a_document_of_another_record_version_is_refused(written, cls):
    result, _ = written
    document = (result.summary() if cls is DriftSummary else result.report()).to_dict()
    document["record_version"] = cls.VERSION + 1
    with pytest.raises(RecordError, match=f"record_version must be {cls.VERSION}"):
        cls.from_dict(document)


def test_the_untyped_summary_of_version_1_is_refused_naming_the_record_field(written):
    result, _ = written
    document = {k: v for k, v in result.summary().to_dict().items() if k not in ("record", "record_version")}
    with pytest.raises(RecordError, match="record must be 'drift summary'"):
        DriftSummary.from_dict(dict(document, summary_version=1))


def test_a_missing_field_is_refused_naming_it(written):
    result, _ = written
    summary = result.summary().to_dict()
    del summary["drifted_features"]
    with pytest.raises(RecordError, match="drift summary: drifted_features is missing"):
        DriftSummary.from_dict(summary)
    report = result.report().to_dict()
    del report["features"]["f00"]["deciding"]["threshold"]
    with pytest.raises(RecordError, match=r"drift report: features\.f00\.deciding\.threshold is missing"):
        DriftReport.from_dict(report)


class _Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        _Webhook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_drift_alert_posts_the_drifted_features_of_the_drift_report(written, tmp_path):
    result, out = written
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    drift, report = Artifact(uri=out.drift_json), HTML(uri=out.report_html)
    try:
        status = drift_alert.python_func(
            webhook_url=f"http://127.0.0.1:{server.server_port}/hook", model_uri="m/1", drift=drift, report=report
        )
        stale = tmp_path / "drift.json"
        stale.write_text(json.dumps(dict(result.report().to_dict(), record_version=0)))
        with pytest.raises(RecordError, match=r"drift.json: record_version must be 1"):
            drift_alert.python_func(
                webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
                model_uri="m/1",
                drift=Artifact(uri=str(stale)),
                report=report,
            )
    finally:
        server.shutdown()
    assert status == 200 and len(_Webhook.received) == 1  # the stale report was refused before any POST
    assert _Webhook.received[0]["drifted_features"] == result.drifted_features
