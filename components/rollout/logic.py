"""kfp-free logic of the rollout component: the canary analysis of an InferenceService, with its outputs."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from kfpkit.components.rollout.analysis import (
    DEFAULT_STEPS,
    PrometheusSource,
    RolloutConfig,
    RolloutRecord,
    Thresholds,
    run_rollout,
    to_markdown,
)
from kfpkit.components.rollout.prometheus import PrometheusClient
from kfpkit.core.publish import publish_bytes, publish_json


def rollout_metrics(record: RolloutRecord) -> Dict[str, float]:
    """Scalar KFP ``Metrics`` of a rollout: decision, intervals, final canary share, last step's values."""
    out: Dict[str, float] = {
        "promoted": 1.0 if record.decision == "promote" else 0.0,
        "intervals_to_decision": float(record.intervals_to_decision),
        "final_canary_percent": float(record.final_traffic.get(record.canary_version, 0)),
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
) -> RolloutRecord:
    """Analyses the canary of ISVC ``namespace/name`` (in-cluster credentials) and writes the record.

    Args:
        backend: A traffic backend to use instead of the ISVC's (tests); default: Serverless or Standard by
            the ISVC's deployment mode.

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
    if backend is None:
        from kfpkit.components.rollout.kserve import kserve_backend

        backend = kserve_backend(name, namespace, timeout_s=timeout_s)
    source = PrometheusSource(PrometheusClient(prometheus_url), config.templates())

    def checkpoint(record: RolloutRecord) -> None:
        if record_json_path:
            publish_json(record_json_path, record.as_dict())

    record = run_rollout(backend, source, config, on_step=checkpoint)
    publish_bytes(record_markdown_path, to_markdown(record).encode())
    return record
