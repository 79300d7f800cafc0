"""kfpkit's Prometheus metrics, exported on the ModelServer's ``/metrics`` next to KServe's own.

* ``kfpkit_prediction_score`` (histogram, ``model_name``): every scored instance's probability; canary
  analysis and monitoring compare its distribution between versions.
* ``kfpkit_requests_total`` (counter, ``model_name``, ``protocol`` = v1|v2, ``outcome`` = success |
  bad_request | unsupported_media_type | payload_too_large | not_ready | error).
* ``kfpkit_request_duration_seconds`` (histogram, ``model_name``, ``protocol``): decode + score + encode.

The predict/infer fast path also observes KServe's ``request_predict_seconds`` for the model call, so
KServe dashboards keep working.

The metrics live in prometheus_client's default registry (the one KServe's ``/metrics`` serves) and are
created once per process, when this module is first imported.
"""

from __future__ import annotations

from typing import Dict, Tuple

from prometheus_client import Counter, Histogram

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

PREDICTION_SCORE = Histogram(
    "kfpkit_prediction_score",
    "Positive-class probability of every scored instance",
    ["model_name"],
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
        self._requests[(protocol, outcome)].inc()  # type: ignore[attr-defined]
        self._durations[protocol].observe(seconds)

    def observe_scores(self, probability) -> None:
        observe = self.score.observe
        for p in probability.tolist():
            observe(p)
