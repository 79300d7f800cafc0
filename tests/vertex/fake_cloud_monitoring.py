"""FAKE Cloud Monitoring API v3 (gRPC ``google.monitoring.v3.MetricService/ListTimeSeries``) on 127.0.0.1.

A fake for tests: it stores the time series that the fake Vertex AI data plane writes
(:class:`tests.vertex.fake_vertex_ai.FakeVertexAI`) and answers ``ListTimeSeries`` the way the API documents it.
Every request is deserialized by google-cloud-monitoring's own ``monitoring_v3.ListTimeSeriesRequest`` and
checked:

* ``name`` is ``projects/<the project>``; ``interval.end_time`` is set and not before ``start_time``;
* the ``filter`` is a conjunction of ``<selector> = "<value>"`` terms over ``metric.type``,
  ``resource.type``, ``metric.labels.*`` and ``resource.labels.*``, with exactly one ``metric.type``;
  any other syntax is INVALID_ARGUMENT (the fake knows no more of the filter language);
* an ``aggregation`` other than ``ALIGN_NONE`` is refused: the fake returns raw points only;
* the call carries an ``authorization: Bearer`` header (the client's credentials).

Points are written DELTA, one per series and second (interval ``[s, s+1)``), and returned when their end
time lies in ``(start_time, end_time]``, newest first. ``problems`` lists every refused request.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from typing import Any, Dict, List, Tuple

import grpc

SERVICE = "google.monitoring.v3.MetricService"
_SELECTOR = r"metric\.type|resource\.type|metric\.labels\.[a-z_]+|resource\.labels\.[a-z_]+"
_TERM = re.compile(rf'^\s*({_SELECTOR})\s*=\s*"([^"]*)"\s*$')
# Vertex's latency distribution: exponential buckets from 1 ms, 25 % apart, up to ~7.5 s
LATENCY_BUCKETS = {"num_finite_buckets": 40, "growth_factor": 1.25, "scale": 1.0}


def latency_bucket(ms: float) -> int:
    """Index of the exponential bucket of ``ms`` (0: underflow, 41: overflow)."""
    import math

    if ms < LATENCY_BUCKETS["scale"]:
        return 0
    index = math.floor(math.log(ms / LATENCY_BUCKETS["scale"], LATENCY_BUCKETS["growth_factor"])) + 1
    return min(index, LATENCY_BUCKETS["num_finite_buckets"] + 1)


class FakeCloudMonitoring:
    """The fake (see the module docstring).

    Args:
        project: The only project it answers for.
    """

    def __init__(self, project: str):
        self.project = project
        self.problems: List[str] = []
        self.requests: List[Any] = []
        self._lock = threading.Lock()
        # (metric type, resource labels, metric labels) -> {second: int count | [bucket counts]}
        self._series: Dict[Tuple[str, Tuple, Tuple], Dict[int, Any]] = {}
        self._server = None
        self.port = 0

    # ------------------------------------------------------------------ writing (the fake Vertex data plane)
    def add_count(self, metric_type: str, resource: Dict[str, str], labels: Dict[str, str], at: float) -> None:
        """Counts one event of a DELTA INT64 metric in the second of ``at``."""
        key = (metric_type, tuple(sorted(resource.items())), tuple(sorted(labels.items())))
        with self._lock:
            seconds = self._series.setdefault(key, {})
            seconds[int(at)] = seconds.get(int(at), 0) + 1

    def add_latency(self, metric_type: str, resource: Dict[str, str], labels: Dict[str, str], at: float, ms: float):
        """Adds one value (ms) to a DELTA DISTRIBUTION metric in the second of ``at``."""
        key = (metric_type, tuple(sorted(resource.items())), tuple(sorted(labels.items())))
        with self._lock:
            seconds = self._series.setdefault(key, {})
            buckets = seconds.setdefault(int(at), [0] * (LATENCY_BUCKETS["num_finite_buckets"] + 2))
            buckets[latency_bucket(ms)] += 1

    # ------------------------------------------------------------------ serving
    def start(self) -> FakeCloudMonitoring:
        from google.cloud import monitoring_v3

        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                    self._list_time_series,
                    request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
                    response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _refuse(self, context: Any, message: str, code: Any = grpc.StatusCode.INVALID_ARGUMENT) -> Any:
        self.problems.append(message)
        context.abort(code, message)

    def _list_time_series(self, request: Any, context: Any) -> Any:
        from google.cloud import monitoring_v3

        self.requests.append(request)
        metadata = dict(context.invocation_metadata())
        if not metadata.get("authorization", "").startswith("Bearer "):
            self._refuse(context, "no bearer credentials", grpc.StatusCode.UNAUTHENTICATED)
        if request.name != f"projects/{self.project}":
            self._refuse(context, f"name {request.name!r}: this fake serves projects/{self.project}")
        terms = self._terms(request.filter, context)
        aligner = request.aggregation.per_series_aligner
        if aligner and aligner != monitoring_v3.Aggregation.Aligner.ALIGN_NONE:
            message = f"aggregation {aligner!r}: the fake returns raw points only"
            self._refuse(context, message, grpc.StatusCode.UNIMPLEMENTED)
        if "end_time" not in request.interval:
            self._refuse(context, "interval.end_time is required")
        start = request.interval.start_time.timestamp() if "start_time" in request.interval else None
        end = request.interval.end_time.timestamp()
        if start is not None and start > end:
            self._refuse(context, f"interval start {start} is after its end {end}")
        return monitoring_v3.ListTimeSeriesResponse(time_series=self._matching(terms, start, end))

    def _terms(self, text: str, context: Any) -> Dict[str, str]:
        terms: Dict[str, str] = {}
        for part in re.split(r"\s+AND\s+", text.strip()):
            match = _TERM.match(part)
            if not match:
                self._refuse(context, f'filter term {part!r} is not <selector> = "<value>"')
            terms[match.group(1)] = match.group(2)
        if "metric.type" not in terms:
            self._refuse(context, f"filter {text!r} names no metric.type")
        return terms

    def _matching(self, terms: Dict[str, str], start: Any, end: float) -> List[Any]:
        from google.cloud import monitoring_v3

        out = []
        with self._lock:
            items = [(key, dict(seconds)) for key, seconds in self._series.items()]
        for (metric_type, resource, labels), seconds in items:
            resource_labels, metric_labels = dict(resource), dict(labels)
            wanted = {
                "metric.type": metric_type,
                "resource.type": "aiplatform.googleapis.com/Endpoint",
                **{f"resource.labels.{k}": v for k, v in resource_labels.items()},
                **{f"metric.labels.{k}": v for k, v in metric_labels.items()},
            }
            if any(wanted.get(k) != v for k, v in terms.items()):
                continue
            points = [
                self._point(second, value)
                for second, value in sorted(seconds.items(), reverse=True)
                if (start is None or second + 1 > start) and second + 1 <= end
            ]
            if points:
                distribution = isinstance(next(iter(seconds.values())), list)
                out.append(
                    monitoring_v3.TimeSeries(
                        metric={"type": metric_type, "labels": metric_labels},
                        resource={"type": "aiplatform.googleapis.com/Endpoint", "labels": resource_labels},
                        metric_kind="DELTA",
                        value_type="DISTRIBUTION" if distribution else "INT64",
                        unit="ms" if distribution else "1",
                        points=points,
                    )
                )
        return out

    @staticmethod
    def _point(second: int, value: Any) -> Any:
        from google.cloud import monitoring_v3

        interval = {"start_time": {"seconds": second}, "end_time": {"seconds": second + 1}}
        if isinstance(value, list):
            distribution = {
                "count": sum(value),
                "bucket_options": {"exponential_buckets": LATENCY_BUCKETS},
                "bucket_counts": value,
            }
            return monitoring_v3.Point(interval=interval, value={"distribution_value": distribution})
        return monitoring_v3.Point(interval=interval, value={"int64_value": value})
