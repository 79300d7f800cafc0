"""KFP component: POST an alert to a webhook: drift detected, or a canary promoted or rolled back."""

from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def drift_alert(
    webhook_url: str,
    model_uri: str,
    drift: Optional[Input[Artifact]] = None,
    report: Optional[Input[HTML]] = None,
    rollout_record: Optional[Input[Artifact]] = None,
    pipeline_run: str = "",
    triggered_by: str = "",
) -> int:
    """Sends one JSON POST to a webhook (retried 3 times; fails the task if refused): drift, or a canary's fate.

    With ``drift`` (the monitoring pipeline, when the monitor found drift) the event is
    ``kfpkit.drift_detected`` with the drifted features; with ``rollout_record`` (the continuous-training
    pipeline after the canary analysis, also when the monitoring pipeline retrains through it) the event is
    ``kfpkit.canary_promoted`` or ``kfpkit.canary_rolled_back`` with the decision's reason and versions.
    Body: ``kfpkit.components.drift_alert.logic``.

    Args:
        webhook_url: URL that receives the alert.
        model_uri: The monitored model version (drift), or the canary's version (rollout).
        drift: The monitor's drift report (drift.json, a kfpkit.core.drift_summary.DriftReport; its
            drifted_features go into the alert).
        report: The monitor's HTML report (its URI goes into the alert).
        rollout_record: The rollout's record_json (a kfpkit.core.rollout_record.RolloutRecord); when given,
            the alert says whether the canary was promoted or rolled back, and why.
        pipeline_run: Pipeline run name recorded in the alert.
        triggered_by: The checks that triggered the monitoring pipeline's retrain, comma-separated (drift,
            performance; empty: drift); the event is kfpkit.performance_degraded when drift is not one of them.

    Returns:
        The webhook's HTTP status.
    """
    from kfpkit.components.drift_alert.logic import alert_body, post_alert, rollout_alert_body
    from kfpkit.core.drift_summary import DriftReport
    from kfpkit.core.records import read_record
    from kfpkit.core.rollout_record import read_rollout_record

    if rollout_record is not None:
        record = read_rollout_record(rollout_record.path)
        body = rollout_alert_body(model_uri, record, rollout_record.uri, pipeline_run or None)
    elif drift is not None:
        drifted_features = read_record(drift.path, DriftReport).drifted_features
        report_uri = report.uri if report is not None else None
        triggered = [check for check in triggered_by.split(",") if check]
        body = alert_body(model_uri, drifted_features, report_uri, pipeline_run or None, triggered)
    else:
        raise ValueError("drift_alert needs drift (a drift alert) or rollout_record (a canary decision)")
    return post_alert(webhook_url, body)
