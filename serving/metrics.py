"""kfpkit's Prometheus metrics, exported on the ModelServer's ``/metrics`` next to KServe's own.

* ``kfpkit_prediction_score`` (histogram, ``model_name``): every scored instance's probability; canary
  analysis and monitoring compare its distribution between versions.
* ``kfpkit_requests_total`` (counter, ``model_name``, ``protocol`` = v1|v2, ``outcome`` = success |
  bad_request | unsupported_media_type | payload_too_large | not_ready | error).
* ``kfpkit_request_duration_seconds`` (histogram, ``model_name``, ``protocol``): decode + score + encode.

The predict/infer fast path also observes KServe's ``request_predict_seconds`` for the model call, so
KServe dashboards keep working.

The metrics live in prometheus_client's default registry (the one KServe's ``/metrics`` serves) and are
created once per process, when this module is first imported. ``kfpkit_prediction_score`` is a
:class:`ScoreHistogram`: it counts a request's (or a micro-batch's) scores in one step instead of one
prometheus_client ``observe`` per score, and is exposed with a prometheus_client histogram's samples
(``_bucket``, ``_count``, ``_sum``; not ``_created``, which no kfpkit query reads).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# up to this many scores are counted one by one in Python (cheaper than numpy's per-call cost)
_SMALL_BATCH = 32


class ScoreCounts:
    """The bucket counts and sum of one model's scores (a child of :class:`ScoreHistogram`).

    prometheus_client's ``Histogram.observe`` takes a lock and walks the buckets in Python for every value
    (about 2 us: 2 ms of a 1,000-row request); :meth:`observe_many` counts a whole array under one lock,
    with one ``np.searchsorted`` + ``np.bincount`` when it is large. Buckets are Prometheus's: a value
    ``v`` falls in the first bucket whose upper bound ``le`` satisfies ``v <= le``.
    """

    def __init__(self, model_name: str, upper_bounds: Sequence[float]):
        self.model_name = model_name
        self._bounds = [float(b) for b in upper_bounds]
        self._bounds_array = np.asarray(self._bounds, dtype=np.float64)
        self._counts: List[int] = [0] * (len(self._bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        """Counts every value of ``values``, which are finite numbers.

        The scorers refuse a NaN score before it gets here; prometheus_client would count a NaN in ``_count``
        and in no bucket.
        """
        if values.size <= _SMALL_BATCH:
            scores = values.ravel().tolist()
            bounds = self._bounds
            with self._lock:
                counts = self._counts
                for v in scores:
                    counts[bisect_left(bounds, v)] += 1
                self._sum += sum(scores)
            return
        positions = np.searchsorted(self._bounds_array, values.ravel(), side="left")
        added = np.bincount(positions, minlength=len(self._counts)).tolist()
        total = float(values.sum(dtype=np.float64))
        with self._lock:
            self._counts = [c + a for c, a in zip(self._counts, added, strict=True)]
            self._sum += total

    def snapshot(self) -> Tuple[List[Tuple[str, float]], float]:
        """``([(le, cumulative count), ..., ("+Inf", count)], sum)`` as Prometheus exposes a histogram."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            running += count
            cumulative.append((floatToGoString(bound), float(running)))
        return cumulative, total


class ScoreHistogram(Collector):
    """A histogram with a ``model_name`` label whose values arrive as arrays (:class:`ScoreCounts`).

    Registered in prometheus_client's default registry, so KServe's ``/metrics`` exposes it with the
    other metrics, with a prometheus_client ``Histogram``'s samples except ``_created``.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry=REGISTRY):
        self.name = name
        self.documentation = documentation
        self.buckets = tuple(float(b) for b in buckets if b != float("inf"))
        self._children: Dict[str, ScoreCounts] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, model_name: str) -> ScoreCounts:
        """The child of ``model_name`` (created on first use)."""
        with self._lock:
            child = self._children.get(model_name)
            if child is None:
                child = self._children[model_name] = ScoreCounts(model_name, self.buckets)
            return child

    def describe(self) -> List[HistogramMetricFamily]:
        """The metric family, without samples (what the registry checks names against)."""
        return [HistogramMetricFamily(self.name, self.documentation, labels=["model_name"])]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """Yields the histogram family with one labelled histogram per model, as ``/metrics`` exposes it."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=["model_name"])
        with self._lock:
            children = list(self._children.values())
        for child in children:
            buckets, total = child.snapshot()
            family.add_metric([child.model_name], buckets, total)
        yield family


PREDICTION_SCORE = ScoreHistogram(
    "kfpkit_prediction_score",
    "Positive-class probability of every scored instance",
    buckets=SCORE_BUCKETS,
)
REQUESTS = Counter(
    "kfpkit_requests",
    "Inference requests by protocol and outcome",
    ["model_name", "protocol", "outcome"],
)
REQUEST_DURATION = Histogram(
    "kfpkit_request_duration_seconds",
    "Time to decode, score and encode one inference request",
    ["model_name", "protocol"],
    buckets=LATENCY_BUCKETS,
)

OUTCOMES = ("success", "bad_request", "unsupported_media_type", "payload_too_large", "not_ready", "error")


class ModelMetrics:
    """Pre-bound metric children of one model (``.labels()`` costs a lock and a dict lookup per call)."""

    def __init__(self, model_name: str):
        from kserve.metrics import PREDICT_HIST_TIME, get_labels

        self.model_name = model_name
        self.score = PREDICTION_SCORE.labels(model_name=model_name)
        self.kserve_predict = PREDICT_HIST_TIME.labels(**get_labels(model_name))
        self._requests: Dict[Tuple[str, str], object] = {}
        self._durations = {p: REQUEST_DURATION.labels(model_name=model_name, protocol=p) for p in ("v1", "v2")}
        for protocol in ("v1", "v2"):
            for outcome in OUTCOMES:
                self._requests[(protocol, outcome)] = REQUESTS.labels(
                    model_name=model_name, protocol=protocol, outcome=outcome
                )

    def observe_request(self, protocol: str, outcome: str, seconds: float) -> None:
        """Counts one request in ``kfpkit_requests`` and its duration in ``kfpkit_request_duration_seconds``."""
        self._requests[(protocol, outcome)].inc()  # type: ignore[attr-defined]
        self._durations[protocol].observe(seconds)

    def observe_scores(self, probability: np.ndarray) -> None:
        """Counts finite scores in ``kfpkit_prediction_score``."""
        self.score.observe_many(probability)
