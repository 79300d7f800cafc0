"""The latency check at the scenario suite's traffic volume: one stall never rolls a good canary back.

The scenario suite (``conftest.py``) sends 60 requests a second through nginx and analyses 3-second
intervals: at the 25 % step about 45 canary requests against 135 stable ones. The p99 of 45 requests, read
from the predictor's request-duration buckets, is the slowest single request, so one stall of the busy
host (CI runs the tests on 2 shared cores) read as a canary p99 of 0.2 s against a stable 0.04 s and rolled a
good canary back. The check now judges the quantile the smaller side's number of requests can estimate
(:func:`analysis.latency_quantile`: p99 from 500 requests, p88 of 45), on both sides, from the two
histograms. These tests build the histograms as Prometheus holds them (the predictor's buckets, counts
scaled as ``increase()`` extrapolates them) and judge them with :func:`analysis.judge`.
"""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.analysis import FAIL, PASS, Measurement
from kfpkit.components.rollout.cloud_monitoring import quantile
from kfpkit.serving.metrics import LATENCY_BUCKETS
from tests.rollout import conftest

SEEDS = 300
EDGES = [*LATENCY_BUCKETS, float("inf")]
CONFIG = conftest.CONFIG  # max_latency_ratio 2, min_latency_increase_seconds 0.03
SLOW_EXTRA_S = 0.06  # what harness.Slow adds to every call on an idle machine (harness.slow_rounds)
# one stall per 3-s interval of the suite's 180 requests, whichever version it hits: the failure the suite saw
# (1 of 15 scenario runs, a few intervals each) was rarer than this
STALL_RATE = 1 / 180


def _histogram(latencies: np.ndarray, scale: float = 1.0) -> Measurement:
    """A side's measurement: its requests' latencies counted in the predictor's buckets (le = upper edge)."""
    counts = np.bincount(np.searchsorted(LATENCY_BUCKETS, latencies, side="left"), minlength=len(EDGES)) * scale
    p99 = quantile(0.99, EDGES, counts.tolist())
    return Measurement(
        requests=len(latencies) * scale,
        errors=0.0,
        p99_seconds=p99,
        latency_counts=counts.astype(float).tolist(),
        latency_edges=list(EDGES),
    )


def _without_histogram(side: Measurement) -> Measurement:
    """The same side with only its p99 (the rule before the histograms: the p99 whatever the count)."""
    return Measurement(requests=side.requests, errors=side.errors, p99_seconds=side.p99_seconds)


def _latency_row(canary: Measurement, stable: Measurement):
    _step, rows = analysis.judge(canary, stable, CONFIG)
    return {r.metric: r for r in rows}["p99_latency_ratio"]


def _requests(rng: np.random.Generator, n: int, stall_rate: float, extra_s: float = 0.0) -> np.ndarray:
    """``n`` request latencies of the suite's predictors on a busy host: median 12 ms, a tail to ~40 ms, and
    stalls of 0.1-0.25 s (a descheduled process, a garbage collection) with probability ``stall_rate``."""
    base = rng.lognormal(np.log(0.012), 0.4, n) + extra_s
    stalls = rng.random(n) < stall_rate
    return base + stalls * rng.uniform(0.1, 0.25, n)


def test_the_judged_quantile_has_five_requests_above_it_on_the_smaller_side():
    assert analysis.latency_quantile(5000) == 0.99
    assert analysis.latency_quantile(500) == 0.99
    assert analysis.latency_quantile(499) == 0.98
    assert analysis.latency_quantile(135) == 0.96
    assert analysis.latency_quantile(45) == 0.88
    assert analysis.latency_quantile(25) == 0.80
    assert analysis.latency_quantile(10) == 0.5  # never below the median
    assert analysis.latency_quantile(0) == 0.5
    for n in (12, 45, 57.5, 135, 499):
        assert n * (1 - analysis.latency_quantile(n)) >= analysis.LATENCY_TAIL_REQUESTS - 1e-9


def test_a_good_canary_with_one_stall_among_45_requests_passes_where_its_p99_alone_failed():
    # the suite's 25 % step: 45 canary requests, one of them stalled 200 ms; 135 stable ones with a 41 ms tail
    canary = _histogram(np.array([0.012] * 30 + [0.02] * 14 + [0.2]))
    stable = _histogram(np.array([0.012] * 100 + [0.02] * 33 + [0.041] * 2))
    before = _latency_row(_without_histogram(canary), _without_histogram(stable))
    assert before.verdict == FAIL and canary.p99_seconds > 0.1  # the p99 of 45 is the stalled request
    row = _latency_row(canary, stable)
    assert row.verdict == PASS, row
    assert row.canary < CONFIG.thresholds.max_latency_ratio
    assert row.reason.startswith("p88: ") and "45 give p88 (5 above it)" in row.reason


@pytest.mark.parametrize(("stalls", "verdict"), [(4, PASS), (6, FAIL)])
def test_up_to_four_slow_requests_of_45_pass_and_six_fail(stalls, verdict):
    # the rule's boundary at 45 requests: p88 has 5.4 requests above it
    canary = _histogram(np.array([0.012] * 30 + [0.02] * (15 - stalls) + [0.2] * stalls))
    stable = _histogram(np.array([0.012] * 100 + [0.02] * 33 + [0.041] * 2))
    assert _latency_row(canary, stable).verdict == verdict


def test_a_canary_slower_on_most_requests_fails_at_45_requests():
    canary = _histogram(np.array([0.072] * 30 + [0.08] * 14 + [0.2]))
    stable = _histogram(np.array([0.012] * 100 + [0.02] * 33 + [0.041] * 2))
    row = _latency_row(canary, stable)
    assert row.verdict == FAIL and row.canary > 2 * CONFIG.thresholds.max_latency_ratio, row
    assert row.reason.startswith("p88: ")


def test_with_500_requests_a_side_the_p99_is_judged_and_a_slow_tail_of_two_percent_fails():
    rng = np.random.default_rng(7)
    stable = _histogram(_requests(rng, 1000, stall_rate=0.0))
    tail = _requests(rng, 1000, stall_rate=0.0)
    tail[:20] += 0.2  # 2 % of the canary's requests 200 ms slower: a real regression, not one stall
    row = _latency_row(_histogram(tail), stable)
    assert row.verdict == FAIL and row.reason.startswith("p99: ") and "needs" not in row.reason, row


@pytest.mark.parametrize(("weight", "canary_requests", "stable_requests"), [(25, 45, 135), (50, 90, 90)])
def test_a_good_canary_with_one_stall_per_interval_never_fails_over_300_seeds(weight, canary_requests, stable_requests):
    rng = np.random.default_rng(weight)
    worst, p99_failures = 0.0, 0
    for _seed in range(SEEDS):
        scale = float(rng.uniform(1.0, 1.25))  # increase() extrapolates the counts to the window
        canary = _histogram(_requests(rng, canary_requests, STALL_RATE), scale)
        stable = _histogram(_requests(rng, stable_requests, STALL_RATE), scale)
        row = _latency_row(canary, stable)
        assert row.verdict == PASS, row
        worst = max(worst, row.canary)
        p99_failures += _latency_row(_without_histogram(canary), _without_histogram(stable)).verdict == FAIL
    assert worst < CONFIG.thresholds.max_latency_ratio
    assert p99_failures > SEEDS // 10  # the p99 of these counts failed the same good canary often


@pytest.mark.parametrize(("weight", "canary_requests", "stable_requests"), [(25, 45, 135), (50, 90, 90)])
def test_a_canary_60_ms_slower_on_every_request_fails_on_every_seed(weight, canary_requests, stable_requests):
    rng = np.random.default_rng(100 + weight)
    ratios = []
    for _seed in range(SEEDS):
        scale = float(rng.uniform(1.0, 1.25))
        canary = _histogram(_requests(rng, canary_requests, STALL_RATE, extra_s=SLOW_EXTRA_S), scale)
        stable = _histogram(_requests(rng, stable_requests, STALL_RATE), scale)
        row = _latency_row(canary, stable)
        assert row.verdict == FAIL, row
        ratios.append(row.canary)
    # about 4x stable at the judged quantile: twice the limit (a few stalls on stable bring one interval in
    # 2,000 at 90 requests a side under it; the next step analyses the canary again)
    assert np.median(ratios) > 1.5 * CONFIG.thresholds.max_latency_ratio
