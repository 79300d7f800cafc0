"""Vertex AI's online-prediction metrics of one deployed model, read from Cloud Monitoring (kfp-free).

Vertex AI writes, per Endpoint (monitored resource ``aiplatform.googleapis.com/Endpoint``, labels
``resource_container``, ``location``, ``endpoint_id``) and per deployed model (metric label
``deployed_model_id``), among others:

=============================================================== ====================== ===========================
metric type                                                     kind                   what the analysis takes
=============================================================== ====================== ===========================
``aiplatform.googleapis.com/prediction/online/response_count``  DELTA INT64            requests: every response;
                                                                (``response_code``:    errors: ``5xx``
                                                                ``1xx`` ... ``5xx``)
``aiplatform.googleapis.com/prediction/online/prediction_latencies`` DELTA DISTRIBUTION p99 of ``latency_type``
                                                                ms (``latency_type``)  ``total`` (always written)
=============================================================== ====================== ===========================

:class:`CloudMonitoring` lists the raw points (``ALIGN_NONE``) of one deployed model in a window with
``projects.timeSeries.list`` through ``google-cloud-monitoring``'s ``monitoring_v3`` client (gRPC, its only
transport) and adds them up itself: the DELTA counts are summed, the distributions' bucket counts merged and
the p99 interpolated within its bucket, as Prometheus's ``histogram_quantile`` does. Raw points keep any
interval length possible (an aligned query needs an alignment period of at least 60 s).

Vertex samples these metrics about once a minute and shows a point up to a few minutes later: on Vertex,
analyse intervals of several minutes (``--interval 5m``) and let ``delay_s`` shift the window back past the
latency; an interval with too few requests counted is inconclusive, never a pass.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any, List, Optional, Sequence, Tuple

RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
PREDICTION_LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
ENDPOINT_RESOURCE = "aiplatform.googleapis.com/Endpoint"
ERROR_RESPONSE_CODE = "5xx"
LATENCY_TYPE = "total"
DEFAULT_API_ENDPOINT = "monitoring.googleapis.com"


class MonitoringUnavailable(RuntimeError):
    """Cloud Monitoring could not be reached or refused the query; the analysis counts it as inconclusive."""


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class CloudMonitoring:
    """Raw time series of Vertex AI's online-prediction metrics, through ``monitoring_v3.MetricServiceClient``.

    Args:
        project: The project whose metrics are read (the Endpoint's).
        api_endpoint: ``host:port`` of the Monitoring API (default ``monitoring.googleapis.com``, TLS); a
            loopback address is reached with gRPC's local credentials (a test fake on this machine).
        credentials: google-auth credentials (default: Application Default Credentials).
        timeout_s: Deadline of each call (no retries: a failed read makes the interval inconclusive).
    """

    def __init__(self, project: str, api_endpoint: str = "", credentials: Any = None, timeout_s: float = 10.0):
        import grpc
        from google.cloud.monitoring_v3 import MetricServiceClient
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

        host = api_endpoint or DEFAULT_API_ENDPOINT
        channel_credentials = grpc.local_channel_credentials() if _is_loopback(host) else None
        transport = MetricServiceGrpcTransport(
            host=host, credentials=credentials, ssl_channel_credentials=channel_credentials
        )
        self.client = MetricServiceClient(transport=transport)
        self.project = project
        self.timeout_s = timeout_s

    def series(
        self, metric_type: str, endpoint_id: str, deployed_model_id: str, start: float, end: float, extra: str = ""
    ) -> List[Any]:
        """The ``monitoring_v3.TimeSeries`` of one deployed model's metric with points ending in ``(start, end]``.

        Args:
            metric_type: e.g. :data:`RESPONSE_COUNT`.
            endpoint_id: The Endpoint's ID (``resource.labels.endpoint_id``).
            deployed_model_id: The deployed model (``metric.labels.deployed_model_id``).
            start: Window start, Unix time.
            end: Window end, Unix time.
            extra: More filter terms, e.g. ``metric.labels.latency_type = "total"``.

        Raises:
            MonitoringUnavailable: a connection error, a timeout or a refusal.
        """
        from google.api_core import exceptions
        from google.cloud.monitoring_v3 import ListTimeSeriesRequest, TimeInterval

        terms = [
            f'metric.type = "{metric_type}"',
            f'resource.type = "{ENDPOINT_RESOURCE}"',
            f'resource.labels.endpoint_id = "{endpoint_id}"',
            f'metric.labels.deployed_model_id = "{deployed_model_id}"',
            *([extra] if extra else []),
        ]
        request = ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=" AND ".join(terms),
            interval=TimeInterval(start_time=_timestamp(start), end_time=_timestamp(end)),
            view=ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        try:
            return list(self.client.list_time_series(request=request, retry=None, timeout=self.timeout_s))
        except exceptions.GoogleAPIError as exc:
            raise MonitoringUnavailable(f"{metric_type}: {type(exc).__name__}: {exc}") from exc


def _timestamp(unix: float) -> Any:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(unix * 1e9))
    return stamp


# ------------------------------------------------------------------------------------------ adding up
def response_counts(series: Sequence[Any]) -> Tuple[float, float]:
    """``(responses, 5xx responses)`` summed over the points of ``response_count`` series."""
    total = errors = 0.0
    for item in series:
        count = sum(float(point.value.int64_value) for point in item.points)
        total += count
        if item.metric.labels.get("response_code") == ERROR_RESPONSE_CODE:
            errors += count
    return total, errors


def bucket_bounds(options: Any, count: int) -> List[float]:
    """Upper bounds of a distribution's ``count`` buckets (the last one ``inf``), from its ``BucketOptions``."""
    if "explicit_buckets" in options:
        bounds = list(options.explicit_buckets.bounds)
    elif "exponential_buckets" in options:
        e = options.exponential_buckets
        bounds = [e.scale * e.growth_factor**i for i in range(e.num_finite_buckets + 1)]
    elif "linear_buckets" in options:
        lin = options.linear_buckets
        bounds = [lin.offset + lin.width * i for i in range(lin.num_finite_buckets + 1)]
    else:
        bounds = []
    return [*bounds, math.inf][:count] if count else []


def merged_distribution(series: Sequence[Any]) -> Tuple[List[float], List[float]]:
    """``(upper bounds, counts)`` of every distribution point of ``series`` added up (one bucket layout)."""
    merged: dict = {}
    for item in series:
        for point in item.points:
            value = point.value.distribution_value
            counts = [float(c) for c in value.bucket_counts]
            for bound, count in zip(bucket_bounds(value.bucket_options, len(counts)), counts, strict=True):
                merged[bound] = merged.get(bound, 0.0) + count
    bounds = sorted(merged)
    return bounds, [merged[b] for b in bounds]


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> Optional[float]:
    """The ``q`` quantile of bucketed values, interpolated linearly in its bucket (``histogram_quantile``'s way).

    Bucket ``i`` holds values in ``(bounds[i-1], bounds[i]]`` (the first from 0); a quantile in the last,
    unbounded bucket is its lower bound. ``None`` without values.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count > 0 and below + count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / count
        below += count
        lower = bound if not math.isinf(bound) else lower
    return lower
