"""Every PromQL expression kfpkit ships runs against the real test Prometheus: the rollout's default
templates (both sets), the PrometheusRule and the Grafana dashboard."""

from __future__ import annotations

import importlib.util
import os

import pytest

from kfpkit.components.rollout import queries
from kfpkit.components.rollout.prometheus import PrometheusClient, PrometheusUnavailable

_HERE = os.path.dirname(os.path.abspath(__file__))


def _manifest_tests():
    spec = importlib.util.spec_from_file_location(
        "manifest_tests", os.path.join(_HERE, "..", "manifests", "test_manifests.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rendered_templates():
    values = dict(namespace="local", isvc="fraud", version="1", revision="fraud-predictor-00001", interval="30s")
    return [
        (f"{name}/{q}", queries.render(t, **values)) for name, s in queries.QUERY_SETS.items() for q, t in s.items()
    ]


@pytest.mark.parametrize(("name", "expr"), _rendered_templates())
def test_default_rollout_templates_are_valid_promql_against_prometheus(prometheus, name, expr):
    samples = PrometheusClient(prometheus.url).query(expr)  # raises on a parse error
    assert isinstance(samples, list), f"{name}: {samples!r}"


def test_kfpkit_templates_return_data_for_a_scraped_predictor(prometheus):
    client = PrometheusClient(prometheus.url)
    values = dict(namespace="local", isvc="fraud", version="1", interval="5m")
    assert client.scalar(queries.render(queries.KFPKIT_QUERIES["requests"], **values)) is not None
    assert client.query(queries.render(queries.KFPKIT_QUERIES["score_buckets"], **values))
    latency = client.query(queries.render(queries.KFPKIT_QUERIES["latency_buckets"], **values))
    assert latency and all("le" in labels for labels, _value in latency)  # the latency check's histogram


def test_rule_and_dashboard_expressions_run_against_prometheus(prometheus):
    module = _manifest_tests()
    client = PrometheusClient(prometheus.url)
    exprs = module.rule_expressions() + [
        e.replace("$namespace", "local").replace("$isvc", "fraud") for e in module.dashboard_expressions()
    ]
    assert exprs, "no rule or dashboard expressions found"
    for expr in exprs:
        samples = client.query(expr)  # raises on a parse or evaluation error
        assert isinstance(samples, list), f"{expr}: {samples!r}"


def test_a_bad_template_is_refused_before_any_query():
    with pytest.raises(queries.QueryTemplateError, match="unknown query 'latency'"):
        queries.query_set("kfpkit", {"latency": "up"})
    with pytest.raises(queries.QueryTemplateError, match="bad template"):
        queries.query_set("kfpkit", {"requests": "sum(x{{job={job}}})"})


def test_an_unparsable_query_is_reported_as_unavailable_not_as_data(prometheus):
    with pytest.raises(PrometheusUnavailable, match="bad_data"):
        PrometheusClient(prometheus.url).query("sum(")


def test_a_p99_override_alone_makes_the_relative_latency_check_judge_that_p99():
    """A user's own latency metric must not be silently replaced by kfpkit's request histograms."""
    own = "histogram_quantile(0.99, sum by (le) (rate(my_latency_bucket{{pod=~'{isvc}-.*'}}[{interval}])))"
    assert queries.query_set("kfpkit", {"p99_seconds": own})["latency_buckets"] == ""
    both = queries.query_set("kfpkit", {"p99_seconds": own, "latency_buckets": "sum by (le) (my_latency_bucket)"})
    assert both["latency_buckets"] == "sum by (le) (my_latency_bucket)"
    assert queries.query_set("kfpkit")["latency_buckets"] == queries.KFPKIT_QUERIES["latency_buckets"]
