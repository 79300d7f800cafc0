"""kfp-free logic of the rollout component: the canary analysis of an InferenceService, with its outputs."""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional, Sequence

from kfpkit.components.rollout.analysis import DEFAULT_STEPS, PrometheusSource, RolloutConfig, Thresholds, run_rollout
from kfpkit.components.rollout.prometheus import PrometheusClient
from kfpkit.core.rollout_record import PROMOTE, ROLLBACK, RolloutRecord, write_rollout_record

log = logging.getLogger(__name__)


def rollout_metrics(record: RolloutRecord) -> Dict[str, float]:
    """Scalar KFP ``Metrics`` of a rollout: decision, intervals, final canary share, last step's values."""
    out: Dict[str, float] = {
        "promoted": 1.0 if record.decision == PROMOTE else 0.0,
        "intervals_to_decision": float(record.intervals_to_decision),
        "final_canary_percent": float(record.final_canary_percent),
    }
    if record.steps:
        for row in record.steps[-1].metrics:
            if row.canary is not None:
                out[f"canary_{row.metric}"] = float(row.canary)
    return out


def run_rollout_task(
    *,
    name: str,
    namespace: str,
    prometheus_url: str,
    record_markdown_path: str,
    record_json_path: Optional[str] = None,
    steps: Optional[Sequence[int]] = None,
    interval_s: float = 60.0,
    min_requests: int = 50,
    max_inconclusive: int = 3,
    thresholds: Optional[Mapping[str, float]] = None,
    query_set: str = "kfpkit",
    query_overrides: Optional[Mapping[str, str]] = None,
    timeout_s: float = 600.0,
    backend: Any = None,
    vertex_project: str = "",
    vertex_location: str = "us-central1",
    vertex_endpoint: str = "",
    metrics_delay_s: float = 0.0,
    model_uri: str = "",
) -> RolloutRecord:
    """Analyses the canary of ISVC ``namespace/name`` (in-cluster credentials) and writes the record.

    The rollout record (:class:`~kfpkit.core.rollout_record.RolloutRecord`) is written as JSON to
    ``record_json_path`` after every step and as Markdown to ``record_markdown_path`` once decided.

    Args:
        name: The InferenceService.
        namespace: Its namespace.
        prometheus_url: Prometheus scraping both versions.
        record_markdown_path: Where the Markdown goes.
        record_json_path: Where the JSON goes (``None``: not written).
        steps: Canary weights in percent (default 10, 25, 50, 100).
        interval_s: Seconds of traffic per step.
        min_requests: Canary requests a step needs to be judged.
        max_inconclusive: Inconclusive intervals before a rollback.
        thresholds: :class:`~kfpkit.components.rollout.analysis.Thresholds` fields to override, by name.
        query_set: PromQL template set.
        query_overrides: PromQL templates by query name.
        timeout_s: Readiness timeout of each traffic change.
        backend: A traffic backend to use instead of the ISVC's (tests); default: Serverless or Standard by
            the ISVC's deployment mode. ``"vertex"``: the Vertex AI Endpoint ``vertex_endpoint``
            (:func:`kfpkit.components.rollout.vertex.vertex_rollout_parts`), measured in Cloud Monitoring and
            the payload log instead of Prometheus.
        vertex_project: Vertex AI: the Endpoint's project (Application Default Credentials).
        vertex_location: Vertex AI: its region.
        vertex_endpoint: Vertex AI: its ID.
        metrics_delay_s: Vertex AI: shift of each measured window back in time.
        model_uri: The canary's registry version URI (push's ``model_uri``); on a rollback the registry
            records it (:func:`kfpkit.core.registry.record_rollback`), so ``LATEST_BLESSED.json`` names the
            version still serving. Empty: the registry is not told.

    Raises:
        kfpkit.components.rollout.analysis.RolloutError: bad configuration or no canary to analyse.
        kfpkit.components.deploy.isvc.DeployError: the ISVC cannot be read or patched.
    """
    config = RolloutConfig(
        steps=tuple(steps or DEFAULT_STEPS),
        interval_s=interval_s,
        min_requests=min_requests,
        max_inconclusive=max_inconclusive,
        thresholds=Thresholds(**dict(thresholds or {})),
        query_set=query_set,
        query_overrides=tuple((query_overrides or {}).items()),
    )
    source: Any = None
    if backend == "vertex":
        from kfpkit.components.rollout.vertex import vertex_rollout_parts

        backend, source = vertex_rollout_parts(
            project=vertex_project,
            location=vertex_location,
            endpoint_id=vertex_endpoint,
            delay_s=metrics_delay_s,
            timeout_s=timeout_s,
        )
    elif backend in (None, "kserve"):
        from kfpkit.components.rollout.kserve import kserve_backend

        backend = kserve_backend(name, namespace, timeout_s=timeout_s)
    if source is None:
        source = PrometheusSource(PrometheusClient(prometheus_url), config.templates())

    def checkpoint(record: RolloutRecord) -> None:
        write_rollout_record(record, record_json_path, record_markdown_path)

    record = run_rollout(backend, source, config, on_step=checkpoint)
    if model_uri and record.decision == ROLLBACK:
        record_rollback_in_registry(model_uri, record)
    return record


def record_rollback_in_registry(model_uri: str, record: RolloutRecord) -> None:
    """Tells the registry that the canary of ``record``, the version at ``model_uri``, was rolled back.

    The rollout's canary is the ``model_version`` label the backend reports; the registry is told only when
    that is the version ``model_uri`` names; a canary of another version, or a ``model_uri`` that is not a
    registry version URI (a model deployed from elsewhere), is left alone, with a warning.

    The traffic has already moved back when this runs, so a registry that cannot be written (or does not
    hold the version) is logged as an error, not raised: the rollout's decision, its outputs and its alert
    must not be lost to it, and a retried task must not analyse a canary that is gone. The next push or
    rollback writes the pointer again.
    """
    from kfpkit.core.registry import RegistryError, parse_version_uri, record_rollback

    try:
        target = parse_version_uri(model_uri)
    except RegistryError as exc:
        log.warning("the registry is not told of the rollback: %s", exc)
        return
    if record.canary_version != str(target.version):
        log.warning(
            "the rolled-back canary is version %r, not %s: the registry is not told", record.canary_version, model_uri
        )
        return
    try:
        latest = record_rollback(target.root, target.model_name, target.version, reason=record.reason)
    except (RegistryError, OSError) as exc:
        log.error("the rollback of %s could not be recorded in the registry: %s", model_uri, exc)
        return
    log.info(
        "registry: version %s of %s recorded as rolled back; LATEST_BLESSED now names %s",
        target.version,
        target.model_name,
        latest.version if latest else "no version",
    )
