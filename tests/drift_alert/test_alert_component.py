"""drift_alert's component (python_func, tmp-path artifacts) against a loopback webhook: which event it sends."""

from __future__ import annotations

import pytest
from kfp.dsl import HTML, Artifact

from kfpkit.components.drift_alert import logic
from kfpkit.components.drift_alert.component import drift_alert
from kfpkit.core.drift_summary import DriftReport
from kfpkit.core.records import write_record
from kfpkit.core.rollout_record import RolloutRecord, write_rollout_record
from tests.drift_alert.test_post_alert import webhook  # noqa: F401  (the loopback webhook fixture)


def _record(tmp_path, decision: str) -> Artifact:
    record = RolloutRecord(
        backend="kserve-serverless",
        namespace="models",
        isvc="fraud-detector",
        stable_version="2",
        canary_version="3",
        steps_config=[10, 25, 50, 100],
        interval_s=60.0,
        decision=decision,
        reason="score_js_distance 0.41 > 0.1" if decision == "rollback" else "every step passed",
        final_traffic={"2": 100} if decision == "rollback" else {"3": 100},
    )
    path = tmp_path / f"record-{decision}.json"
    write_rollout_record(record, str(path))
    return Artifact(uri=str(path))


@pytest.mark.parametrize(
    ("decision", "event"), [("rollback", logic.ROLLED_BACK_EVENT), ("promote", logic.PROMOTED_EVENT)]
)
def test_a_rollout_record_makes_the_alert_say_whether_the_canary_was_promoted_or_rolled_back(
    tmp_path,
    webhook,  # noqa: F811
    decision,
    event,
):
    status = drift_alert.python_func(
        webhook_url=webhook.url,
        model_uri="gs://r/fraud-detector/3",
        rollout_record=_record(tmp_path, decision),
        pipeline_run="monitoring-run-7",
    )

    assert status == 200
    (body,) = webhook.bodies
    assert body["event"] == event and body["model_uri"] == "gs://r/fraud-detector/3"
    assert body["rollout"]["decision"] == decision
    assert (body["rollout"]["stable_version"], body["rollout"]["canary_version"]) == ("2", "3")
    assert body["rollout"]["reason"].startswith("score_js" if decision == "rollback" else "every")
    assert body["rollout"]["record_uri"].endswith(f"record-{decision}.json")
    assert body["pipeline_run"] == "monitoring-run-7" and "drifted_features" not in body


def test_a_drift_report_still_makes_the_drift_detected_alert(tmp_path, webhook):  # noqa: F811
    path = tmp_path / "drift.json"
    report_record = DriftReport(
        drift_detected=True,
        drifted_features=["amount"],
        features={},
        score_drift=None,
        rows=500,
        model_uri="m/1",
        live="gs://p/log",
    )
    write_record(str(path), report_record)
    report = HTML(uri=str(tmp_path / "report.html"))

    drift_alert.python_func(webhook_url=webhook.url, model_uri="m/1", drift=Artifact(uri=str(path)), report=report)

    (body,) = webhook.bodies
    assert body["event"] == logic.DRIFT_EVENT and body["drifted_features"] == ["amount"]
    assert body["report_uri"] == report.uri and "rollout" not in body


def test_a_rollout_record_without_a_decision_is_refused_before_anything_is_sent(tmp_path, webhook):  # noqa: F811
    with pytest.raises(ValueError, match="no decision"):
        drift_alert.python_func(webhook_url=webhook.url, model_uri="m/3", rollout_record=_record(tmp_path, ""))
    assert webhook.bodies == []


def test_an_alert_with_neither_drift_nor_a_rollout_record_is_refused(webhook):  # noqa: F811
    with pytest.raises(ValueError, match="needs drift"):
        drift_alert.python_func(webhook_url=webhook.url, model_uri="m/1")
    assert webhook.bodies == []
