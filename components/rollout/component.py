"""KFP component: canary analysis of an InferenceService from Prometheus, then promote or roll back."""

from typing import Dict, List, NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Metrics, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def rollout(
    isvc_name: str,
    namespace: str,
    prometheus_url: str,
    record: Output[Markdown],
    record_json: Output[Artifact],
    metrics: Output[Metrics],
    steps: Optional[List[int]] = None,
    interval_seconds: float = 60.0,
    min_requests: int = 50,
    max_inconclusive: int = 3,
    thresholds: Optional[Dict[str, float]] = None,
    query_set: str = "kfpkit",
    query_overrides: Optional[Dict[str, str]] = None,
    timeout_seconds: float = 600.0,
    backend: str = "kserve",
    vertex_project: str = "",
    vertex_location: str = "us-central1",
    vertex_endpoint: str = "",
    metrics_delay_seconds: float = 0.0,
    model_uri: str = "",
) -> NamedTuple("RolloutOutputs", [("decision", str), ("canary_traffic_percent", int)]):  # type: ignore[valid-type]  # KFP reads the functional NamedTuple
    """Steps the canary's traffic up, judges canary against stable each interval, promotes or rolls back.

    Each step queries Prometheus for both versions (requests, error rate, p99 latency, and the
    Jensen-Shannon distance (base 2) and PSI (counts smoothed by 0.5) between their
    ``kfpkit_prediction_score`` histograms) and judges relative checks (canary
    against stable) and absolute SLOs. Fewer than ``min_requests`` canary requests, or Prometheus
    unreachable, make a step inconclusive: it waits, and after ``max_inconclusive`` such intervals the
    rollout rolls back; it never promotes on missing data. Promote: Serverless removes
    ``canaryTrafficPercent``, Standard makes the canary the predictor with ``canary: []``. Rollback:
    Serverless 0 %, Standard ``canary: []``. A retried task reads the current traffic from the ISVC and
    continues at that step.

    Args:
        isvc_name: InferenceService with a canary (deploy's output).
        namespace: Its namespace.
        prometheus_url: Prometheus scraping the predictors (PodMonitor of ``manifests/base``).
        record: The rollout record as Markdown: per step, each metric, threshold and verdict; the decision.
        record_json: The rollout record as JSON (rewritten after every step; a
            kfpkit.core.rollout_record.RolloutRecord).
        metrics: Decision (``promoted`` 1/0), intervals to decision, final canary share, last canary values.
        steps: Canary weights in percent, increasing to 100 (default 10, 25, 50, 100).
        interval_seconds: Seconds of traffic analysed per step.
        min_requests: Canary requests an interval needs to be judged.
        max_inconclusive: Inconclusive intervals after which the rollout rolls back.
        thresholds: Overrides of the limits by name: ``max_error_rate_increase``, ``max_latency_ratio``,
            ``max_score_js``, ``max_score_psi``, ``max_error_rate``, ``max_p99_seconds``, ``score_alpha``.
        query_set: PromQL template set: ``kfpkit`` (the predictor's metrics) or ``queue-proxy`` (Knative).
        query_overrides: PromQL templates by query name (``requests``, ``errors``, ``p99_seconds``,
            ``latency_buckets``, ``score_buckets``), with ``{namespace}``, ``{isvc}``, ``{version}``, ``{revision}``,
            ``{interval}``.
        timeout_seconds: Readiness timeout of each traffic change (Vertex AI: of each undeploy operation).
        backend: ``kserve`` (the InferenceService; Prometheus) or ``vertex`` (a Vertex AI Endpoint's
            ``traffic_split``; requests, 5xx and p99 per deployed model from Cloud Monitoring, the score
            distributions from each version's payload log; ``prometheus_url`` and the query settings unused).
        vertex_project: Vertex AI: the Google Cloud project.
        vertex_location: Vertex AI: the region.
        vertex_endpoint: Vertex AI: the Endpoint ID (empty: ``isvc_name``).
        metrics_delay_seconds: Vertex AI: shift of each measured window back in time, for the minutes Cloud
            Monitoring takes to show a point.
        model_uri: The canary's registry version URI (push's ``model_uri``): on a rollback the registry records
            it and points ``LATEST_BLESSED.json`` at the version still serving. Empty: the registry is not told.

    Returns:
        decision: ``promote`` or ``rollback``.
        canary_traffic_percent: The canary's traffic share at the end (100 after a promotion).
    """
    import collections

    from kfpkit.components.rollout.logic import rollout_metrics, run_rollout_task

    result = run_rollout_task(
        name=isvc_name,
        namespace=namespace,
        prometheus_url=prometheus_url,
        record_markdown_path=record.path,
        record_json_path=record_json.path,
        steps=steps,
        interval_s=interval_seconds,
        min_requests=min_requests,
        max_inconclusive=max_inconclusive,
        thresholds=thresholds,
        query_set=query_set,
        query_overrides=query_overrides,
        timeout_s=timeout_seconds,
        backend=backend,
        vertex_project=vertex_project,
        vertex_location=vertex_location,
        vertex_endpoint=vertex_endpoint or isvc_name,
        metrics_delay_s=metrics_delay_seconds,
        model_uri=model_uri,
    )
    for key, value in rollout_metrics(result).items():
        metrics.log_metric(key, value)
    record.metadata["decision"] = result.decision
    RolloutOutputs = collections.namedtuple("RolloutOutputs", ["decision", "canary_traffic_percent"])
    return RolloutOutputs(result.decision, result.final_canary_percent)
