"""PromQL templates of the canary analysis: kfpkit's predictor metrics (default) and Knative's queue-proxy.

Every query is a template with the placeholders ``{namespace}``, ``{isvc}``, ``{version}``, ``{revision}``
and ``{interval}``; :func:`render` fills them for one side (stable or canary) of one analysis step.
Literal braces of PromQL label matchers are written doubled (``{{`` and ``}}``), as in ``str.format``.

**Label contract.** The kfpkit templates select the scrape *target* labels ``namespace``, ``isvc`` and
``model_version``. The PodMonitor in ``manifests/base`` copies them from the predictor pods' labels
(``serving.kserve.io/inferenceservice`` and ``kfpkit.dev/model-version``, which deploy sets on every
predictor); the local backend sets them on each ``kfpkit serve`` target of its Prometheus config.

Queries (each returns one sample, or a vector by ``le`` for ``latency_buckets`` and ``score_buckets``):

* ``requests`` -- requests answered in the interval;
* ``errors`` -- of them, server errors (``outcome`` = ``error`` or ``not_ready``; client errors are the
  client's fault and do not count);
* ``p99_seconds`` -- p99 of the request duration;
* ``latency_buckets`` -- cumulative request-duration bucket counts (``le`` in seconds) observed in the
  interval: the latency comparison judges the quantile its number of requests can estimate from them;
* ``score_buckets`` -- cumulative ``kfpkit_prediction_score`` bucket counts observed in the interval.

``QUEUE_PROXY_QUERIES`` is the documented set for Knative's queue-proxy (Serverless mode; ``{revision}`` is
the Knative revision): it measures what the ingress sees, including requests the predictor never answered.
It has no score distribution, so ``score_buckets`` keeps kfpkit's template, and ``latency_buckets`` keeps
kfpkit's too (queue-proxy's buckets are in milliseconds, and ``le`` cannot be rescaled in PromQL). Users can
override any query; overriding ``p99_seconds`` alone empties ``latency_buckets`` (not queried), so the relative
latency check judges the overridden p99s rather than kfpkit's request histograms.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

QUERY_NAMES = ("requests", "errors", "p99_seconds", "latency_buckets", "score_buckets")

_KFPKIT_SELECTOR = 'namespace="{namespace}",isvc="{isvc}",model_version="{version}"'

KFPKIT_QUERIES: Dict[str, str] = {
    "requests": "sum(increase(kfpkit_requests_total{{" + _KFPKIT_SELECTOR + "}}[{interval}]))",
    "errors": "sum(increase(kfpkit_requests_total{{" + _KFPKIT_SELECTOR + ',outcome=~"error|not_ready"}}[{interval}]))',
    "p99_seconds": "histogram_quantile(0.99, sum by (le) (rate(kfpkit_request_duration_seconds_bucket{{"
    + _KFPKIT_SELECTOR
    + "}}[{interval}])))",
    "latency_buckets": "sum by (le) (increase(kfpkit_request_duration_seconds_bucket{{"
    + _KFPKIT_SELECTOR
    + "}}[{interval}]))",
    "score_buckets": "sum by (le) (increase(kfpkit_prediction_score_bucket{{" + _KFPKIT_SELECTOR + "}}[{interval}]))",
}

_QP_SELECTOR = 'namespace_name="{namespace}",revision_name="{revision}"'

QUEUE_PROXY_QUERIES: Dict[str, str] = {
    "requests": "sum(increase(revision_app_request_count{{" + _QP_SELECTOR + "}}[{interval}]))",
    "errors": "sum(increase(revision_app_request_count{{" + _QP_SELECTOR + ',response_code_class="5xx"}}[{interval}]))',
    # queue-proxy reports milliseconds
    "p99_seconds": "histogram_quantile(0.99, sum by (le) (rate(revision_app_request_latencies_bucket{{"
    + _QP_SELECTOR
    + "}}[{interval}]))) / 1000",
    "latency_buckets": KFPKIT_QUERIES["latency_buckets"],
    "score_buckets": KFPKIT_QUERIES["score_buckets"],
}

QUERY_SETS: Dict[str, Dict[str, str]] = {"kfpkit": KFPKIT_QUERIES, "queue-proxy": QUEUE_PROXY_QUERIES}


class QueryTemplateError(ValueError):
    """A query template names an unknown query or placeholder."""


def query_set(name: str = "kfpkit", overrides: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The templates of set ``name`` with ``overrides`` (``{query name: template}``) applied.

    Raises:
        QueryTemplateError: unknown set or query name, or a template with an unknown placeholder.
    """
    if name not in QUERY_SETS:
        raise QueryTemplateError(f"unknown query set {name!r}; expected one of {', '.join(QUERY_SETS)}")
    templates = dict(QUERY_SETS[name])
    for key, template in (overrides or {}).items():
        if key not in QUERY_NAMES:
            raise QueryTemplateError(f"unknown query {key!r}; expected one of {', '.join(QUERY_NAMES)}")
        templates[key] = template
    if "p99_seconds" in (overrides or {}) and "latency_buckets" not in (overrides or {}):
        # a latency of the user's own: the relative check compares its p99s, not kfpkit's request histograms
        templates["latency_buckets"] = ""
    for key, template in templates.items():
        try:
            render(template, namespace="n", isvc="i", version="v", revision="r", interval="1s")
        except (KeyError, IndexError, ValueError) as exc:
            raise QueryTemplateError(f"query {key!r}: bad template {template!r}: {exc}") from exc
    return templates


def render(template: str, *, namespace: str, isvc: str, version: str, revision: str = "", interval: str) -> str:
    """One PromQL expression: ``template`` with its placeholders filled."""
    return template.format(namespace=namespace, isvc=isvc, version=version, revision=revision, interval=interval)


def duration(seconds: float) -> str:
    """A PromQL range duration for ``seconds`` (whole milliseconds, at least 1 s)."""
    millis = max(1000, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
