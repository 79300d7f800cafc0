"""kfpkit_prediction_score counts arrays of scores exactly as a prometheus_client Histogram counts them one by one."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kfpkit.serving.metrics import SCORE_BUCKETS, ScoreHistogram


def _samples(registry: CollectorRegistry, name: str) -> dict:
    """``{(sample name, le or None): value}`` of metric ``name`` as /metrics exposes it."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out[(sample.name, sample.labels.get("le"))] = sample.value
    return out


def _pair():
    ours_registry, oracle_registry = CollectorRegistry(), CollectorRegistry()
    ours = ScoreHistogram("score", "scores", SCORE_BUCKETS, registry=ours_registry)
    oracle = Histogram("score", "scores", ["model_name"], buckets=SCORE_BUCKETS, registry=oracle_registry)
    return ours, ours_registry, oracle, oracle_registry


# on-the-bound values (0.05, 1.0), both ends, and arrays below and above the numpy path's size
BATCHES = [
    np.array([0.05]),
    np.array([0.0, 0.05, 0.0500001, 0.1, 0.95, 1.0]),
    np.linspace(0.0, 1.0, 33),
    np.random.default_rng(0).random(1000),
    np.random.default_rng(1).random((40, 1)),
]


def test_bucket_counts_and_sum_equal_prometheus_clients_histogram_for_small_and_large_arrays():
    ours, ours_registry, oracle, oracle_registry = _pair()

    for batch in BATCHES:
        ours.labels("m").observe_many(batch)
        for value in batch.ravel().tolist():
            oracle.labels(model_name="m").observe(value)

    got, expected = _samples(ours_registry, "score"), _samples(oracle_registry, "score")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got[("score_count", None)] == sum(b.size for b in BATCHES)


def test_each_model_name_is_its_own_series():
    ours, registry, _, _ = _pair()
    ours.labels("a").observe_many(np.array([0.2, 0.9]))
    ours.labels("b").observe_many(np.array([0.2]))

    counts = {
        s.labels["model_name"]: s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
        if s.name == "score_count"
    }
    assert counts == {"a": 2.0, "b": 1.0}
    assert ours.labels("a") is ours.labels("a")


def test_concurrent_observers_lose_no_count():
    ours, _, _, _ = _pair()
    child = ours.labels("m")
    small, large = np.full(3, 0.5), np.full(100, 0.25)
    rounds = 5000

    def observe(batch: np.ndarray) -> None:
        for _ in range(rounds):
            child.observe_many(batch)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that unlocked read-modify-writes would interleave
    try:
        threads = [threading.Thread(target=observe, args=(b,)) for b in (small, large, small, large)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)

    buckets, total = child.snapshot()
    assert buckets[-1] == ("+Inf", 2 * rounds * (3 + 100))
    assert total == pytest.approx(2 * rounds * (3 * 0.5 + 100 * 0.25))
