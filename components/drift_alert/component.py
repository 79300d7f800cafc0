"""KFP component: POST a drift alert to a webhook (used by the monitoring pipeline when drift is detected)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def drift_alert(
    webhook_url: str,
    model_uri: str,
    drift: Input[Artifact],
    report: Input[HTML],
    pipeline_run: str = "",
) -> int:
    """Sends one JSON POST describing the drift to a webhook (retried 3 times; fails the task if refused).

    Args:
        webhook_url: URL that receives the alert.
        model_uri: The monitored model version.
        drift: The monitor's drift report (drift.json, a kfpkit.core.drift_summary.DriftReport; its
            drifted_features go into the alert).
        report: The monitor's HTML report (its URI goes into the alert).
        pipeline_run: Pipeline run name recorded in the alert.

    Returns:
        The webhook's HTTP status.
    """
    from kfpkit.components.drift_alert.logic import alert_body, post_alert
    from kfpkit.core.drift_summary import DriftReport
    from kfpkit.core.records import read_record

    drifted_features = read_record(drift.path, DriftReport).drifted_features
    body = alert_body(model_uri, drifted_features, report.uri, pipeline_run or None)
    return post_alert(webhook_url, body)
