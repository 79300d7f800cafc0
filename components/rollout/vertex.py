"""The Vertex AI Endpoint traffic backend and its measurements (kfp-free).

:class:`VertexEndpointBackend` is the fourth :class:`~kfpkit.components.rollout.backends.TrafficBackend`:
the Endpoint's ``traffic_split`` across two deployed model versions (deploy put the canary there,
:mod:`kfpkit.components.deploy.vertex`).

* ``set_canary_percent(p)``: ``endpoints.patch`` of ``traffic_split`` (``p`` to the canary, the rest to
  the stable one);
* ``promote()``: the canary gets 100 %, then the stable deployed model is undeployed;
* ``rollback()``: the stable one gets 100 %, then the canary is undeployed.

The split answers at once (the patch returns the Endpoint); undeploying is a long-running operation, polled
to its end. A task killed between the two calls leaves both models deployed with the decided split, and
its retry decides again from there.

:class:`VertexEndpointSource` measures each side as the analysis expects
(:class:`~kfpkit.components.rollout.analysis.Measurement`): requests, 5xx errors and the p99 latency of its
deployed model from Cloud Monitoring (:mod:`kfpkit.components.rollout.cloud_monitoring`), and its score
histogram from the payload log that its container writes (:mod:`kfpkit.components.rollout.payload_scores`;
the root and the model name are read from the version's container arguments). The analysis, its thresholds
and its rule never to promote without data are the same as for the KServe backends.

Entry point: :func:`vertex_rollout_parts` builds both from a project, location and Endpoint ID.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple

from kfpkit.components.deploy.vertex import VertexApi, VertexLocation, container_flag, endpoint_traffic
from kfpkit.components.rollout import cloud_monitoring as cm
from kfpkit.components.rollout.analysis import Measurement, RolloutError
from kfpkit.components.rollout.backends import TrafficBackend
from kfpkit.components.rollout.payload_scores import PayloadLogUnavailable, score_histogram
from kfpkit.core.traffic import Side, Traffic


class VertexEndpointBackend(TrafficBackend):
    """A Vertex AI Endpoint's ``traffic_split`` between its stable and its canary deployed model.

    Args:
        api: The Vertex AI calls (:class:`~kfpkit.components.deploy.vertex.VertexApi`).
        endpoint_id: The Endpoint.
    """

    NAME: ClassVar[str] = "vertex-endpoint"

    def __init__(self, api: VertexApi, endpoint_id: str):
        self.api = api
        self.endpoint_id = endpoint_id

    def current(self) -> Traffic:
        """The split of the Endpoint's deployed models (the newer one is the canary).

        Raises:
            kfpkit.components.deploy.isvc.DeployError: the Endpoint is gone or holds more than two models.
        """
        return endpoint_traffic(self.api, self.endpoint_id)

    def _sides(self) -> Tuple[Side, Side]:
        traffic = self.current()
        if traffic.canary is None:
            raise RolloutError(f"endpoint {self.endpoint_id} has no canary")
        return traffic.stable, traffic.canary

    def set_canary_percent(self, percent: int) -> Traffic:
        """Patches ``traffic_split``: ``percent`` to the canary, the rest to the stable model.

        Raises:
            RolloutError: the Endpoint has no canary.
        """
        stable, canary = self._sides()
        self.api.set_traffic(self.endpoint_id, {canary.revision: percent, stable.revision: 100 - percent})
        return self.current()

    def promote(self) -> Traffic:
        """The canary gets 100 %, then the stable deployed model is undeployed."""
        return self._decide(winner_is_canary=True)

    def rollback(self) -> Traffic:
        """The stable model gets 100 %, then the canary is undeployed."""
        return self._decide(winner_is_canary=False)

    def _decide(self, winner_is_canary: bool) -> Traffic:
        traffic = self.current()
        if traffic.canary is None:  # decided before (a retried task): nothing left to move
            return traffic
        winner, loser = (traffic.canary, traffic.stable) if winner_is_canary else (traffic.stable, traffic.canary)
        self.api.set_traffic(self.endpoint_id, {winner.revision: 100})
        self.api.undeploy(self.endpoint_id, loser.revision, {winner.revision: 100})
        return self.current()


class VertexEndpointSource:
    """Measures one deployed model over one interval: Cloud Monitoring for traffic, the payload log for scores.

    Args:
        api: The Vertex AI calls (to read each side's container arguments).
        monitoring: The Cloud Monitoring reader.
        endpoint_id: The Endpoint.
        delay_s: How far back the window is shifted, for the time Vertex takes to show a metric point.
        payload_log: The payload-log root to read instead of each version's ``--payload-log``.
    """

    def __init__(
        self,
        api: VertexApi,
        monitoring: cm.CloudMonitoring,
        endpoint_id: str,
        delay_s: float = 0.0,
        payload_log: str = "",
    ):
        self.api = api
        self.monitoring = monitoring
        self.endpoint_id = endpoint_id
        self.delay_s = delay_s
        self.payload_log = payload_log
        self._containers: Dict[str, Tuple[str, str]] = {}

    def _payload_of(self, side: Side) -> Tuple[str, str]:
        """``(payload-log root, served model name)`` of a side, from its version's container arguments."""
        if side.revision not in self._containers:
            endpoint = self.api.get_endpoint(self.endpoint_id)
            deployed = next((d for d in (endpoint.deployed_models if endpoint else []) if d.id == side.revision), None)
            if deployed is None:
                return self.payload_log, ""
            args = list(self.api.served_version(deployed).container_spec.args)
            root = self.payload_log or container_flag(args, "--payload-log")
            self._containers[side.revision] = (root, container_flag(args, "--model-name"))
        return self._containers[side.revision]

    def measure(self, traffic: Traffic, side: Side, interval_s: float, at: Optional[float] = None) -> Measurement:
        """Requests, 5xx errors, p99 latency and the score histogram of ``side`` over the ``interval_s`` before ``at``.

        When Cloud Monitoring cannot be read the measurement says why in ``unavailable`` (the interval is
        inconclusive); when the payload log cannot, the score histogram is left out (the score checks are).
        """
        import time

        end = (time.time() if at is None else at) - self.delay_s
        start = end - interval_s
        out = Measurement()
        try:
            responses = self.monitoring.series(cm.RESPONSE_COUNT, self.endpoint_id, side.revision, start, end)
            latency_term = f'metric.labels.latency_type = "{cm.LATENCY_TYPE}"'
            latencies = self.monitoring.series(
                cm.PREDICTION_LATENCIES, self.endpoint_id, side.revision, start, end, latency_term
            )
        except cm.MonitoringUnavailable as exc:
            return Measurement(unavailable=f"cloud monitoring unavailable: {exc}")
        out.requests, out.errors = cm.response_counts(responses)
        bounds_ms, latency_counts = cm.merged_distribution(latencies)
        p99_ms = cm.quantile(0.99, bounds_ms, latency_counts)
        out.p99_seconds = None if p99_ms is None else p99_ms / 1000.0
        if latency_counts:  # the latency comparison judges the quantile its number of requests can estimate
            out.latency_counts, out.latency_edges = latency_counts, [b / 1000.0 for b in bounds_ms]
        root, model_name = self._payload_of(side)
        if root and model_name:
            try:
                out.score_counts, out.score_edges = score_histogram(root, model_name, side.version, start, end)
            except PayloadLogUnavailable:
                out.score_counts = out.score_edges = None
        return out


def vertex_rollout_parts(
    *,
    project: str,
    location: str,
    endpoint_id: str,
    api_endpoint: str = "",
    monitoring_endpoint: str = "",
    payload_log: str = "",
    delay_s: float = 0.0,
    timeout_s: float = 1800.0,
    poll_s: float = 1.0,
    credentials: Any = None,
) -> Tuple[VertexEndpointBackend, VertexEndpointSource]:
    """The backend and the measurement source of a rollout on a Vertex AI Endpoint.

    Args:
        project: Google Cloud project of the Endpoint (and of its metrics).
        location: Its region.
        endpoint_id: The Endpoint's ID.
        api_endpoint: Vertex AI API base URL (empty: ``https://<location>-aiplatform.googleapis.com``).
        monitoring_endpoint: Cloud Monitoring ``host:port`` (empty: ``monitoring.googleapis.com``).
        payload_log: Payload-log root overriding each version's ``--payload-log`` (empty: theirs).
        delay_s: Shift of each measured window back in time (Cloud Monitoring's visibility latency).
        timeout_s: Longest wait for one long-running operation (undeploy).
        poll_s: First poll interval of a long-running operation.
        credentials: google-auth credentials for both APIs (default: Application Default Credentials).

    Raises:
        kfpkit.components.deploy.isvc.DeployError: no project.
    """
    api = VertexApi(
        VertexLocation(project, location, api_endpoint=api_endpoint, timeout_s=timeout_s, poll_s=poll_s), credentials
    )
    monitoring = cm.CloudMonitoring(project, monitoring_endpoint, credentials=credentials)
    backend = VertexEndpointBackend(api, endpoint_id)
    return backend, VertexEndpointSource(api, monitoring, endpoint_id, delay_s=delay_s, payload_log=payload_log)
