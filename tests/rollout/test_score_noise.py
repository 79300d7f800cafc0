"""The score checks at the scenario suite's traffic volume: sampling noise never rolls a good canary back.

The scenario suite (``conftest.py``) sends 60 requests of 20 rows a second through nginx and analyses
3-second intervals at 25, 50 and 100 % canary weight: about 900 canary scores against 2,700 stable ones
at the first step. Two samples of one score distribution that size are, by the JS distance on the
predictor's 20 score buckets, about 0.07 apart (99th percentile about 0.1): the fixed limit alone sat
inside the noise. These tests replay the suite's rows through its models (no servers), split each
interval's requests between the versions as nginx does, scale the counts as Prometheus's ``increase()``
extrapolates them, and judge the histograms with :func:`analysis.judge`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.analysis import FAIL, PASS, Measurement
from kfpkit.core import distances
from kfpkit.core.preprocessing import PreprocessingSpec
from kfpkit.serving.metrics import SCORE_BUCKETS
from tests.rollout import conftest, harness

SEEDS = 300
BATCH_ROWS = 20  # harness.replay_batches' batch size
EDGES = [*SCORE_BUCKETS, float("inf")]


@pytest.fixture(scope="module")
def bucket_of():
    """``{model: bucket index of every replayed row, shaped (batches, rows)}`` for stable, good and shifted."""
    train = harness.frame(600, seed=0)
    spec = PreprocessingSpec.fit(train, harness.LABEL)
    stable = harness.train_net(train, spec, seed=0)
    models = {  # as harness.build_models makes them
        "stable": stable,
        "good": harness.nudged(stable, scale=0.01, seed=1),
        "shifted": harness.train_net(harness.frame(600, seed=0, shift=2.5), spec, seed=0),
    }
    batches = harness.replay_batches()
    numeric, categorical = spec.transform(pd.DataFrame([row for batch in batches for row in batch]))
    x_num, x_cat = torch.tensor(numeric, dtype=torch.float32), torch.tensor(categorical, dtype=torch.int64)
    out = {}
    with torch.no_grad():
        for name, model in models.items():
            scores = model(x_num, x_cat).numpy()
            # a Prometheus bucket le=e counts scores <= e
            out[name] = np.searchsorted(SCORE_BUCKETS, scores, side="left").reshape(len(batches), BATCH_ROWS)
    return out


def _measurement(buckets: np.ndarray, batch_indices: np.ndarray, scale: float) -> Measurement:
    rows = buckets[batch_indices % len(buckets)].ravel()
    counts = np.bincount(rows, minlength=len(EDGES)).astype(float) * scale
    return Measurement(len(batch_indices) * scale, 0.0, 0.02, counts.tolist(), list(EDGES))


def _interval(bucket_of, canary: str, weight: int, rng: np.random.Generator):
    """One interval of the suite's load at ``weight``: (canary, stable) measurements.

    The replay cycles through its batches; nginx sends each request to the canary with the weight's share.
    At 100 % the stable side is the previous (50 %) interval's, as the analysis compares with it.
    """
    requests = round(conftest.RPS * conftest.CONFIG.interval_s)
    start = int(rng.integers(0, len(bucket_of["stable"])))
    window = start + np.arange(requests)
    to_canary = rng.random(requests) < weight / 100 if weight < 100 else np.ones(requests, dtype=bool)
    stable_window = window if weight < 100 else window - requests
    stable_share = ~to_canary if weight < 100 else rng.random(requests) >= 0.5
    # increase() extrapolates the scraped increase to the whole window (by up to window / scrape span)
    scale = float(rng.uniform(1.0, 1.25))
    return (
        _measurement(bucket_of[canary], window[to_canary], scale),
        _measurement(bucket_of["stable"], stable_window[stable_share], scale),
    )


def _score_verdicts(canary: Measurement, stable: Measurement):
    _step, rows = analysis.judge(canary, stable, conftest.CONFIG)
    return {r.metric: r for r in rows if r.metric in ("score_js_distance", "score_psi")}


@pytest.mark.parametrize("weight", [25, 50, 100])
def test_a_good_canary_at_the_scenario_volume_never_fails_a_score_check_over_300_seeds(bucket_of, weight):
    rng = np.random.default_rng(weight)
    worst = 0.0
    for _seed in range(SEEDS):
        rows = _score_verdicts(*_interval(bucket_of, "good", weight, rng))
        assert {r.verdict for r in rows.values()} == {PASS}, rows
        worst = max(worst, rows["score_js_distance"].canary / rows["score_js_distance"].threshold)
    assert worst < 1.0  # the JS distance itself stays below its limit, chi-square gate aside


@pytest.mark.parametrize("weight", [25, 50, 100])
def test_a_shifted_canary_at_the_scenario_volume_fails_both_score_checks_on_every_seed(bucket_of, weight):
    rng = np.random.default_rng(100 + weight)
    closest = np.inf
    for _seed in range(SEEDS):
        rows = _score_verdicts(*_interval(bucket_of, "shifted", weight, rng))
        assert {r.verdict for r in rows.values()} == {FAIL}, rows
        closest = min(closest, rows["score_js_distance"].canary / rows["score_js_distance"].threshold)
    assert closest > 3.0  # far past the limit, noise floor included


@pytest.mark.parametrize("residue", [0, 1, 2, 3])
@pytest.mark.parametrize("requests", range(100, 190, 10))
def test_the_first_interval_of_the_killed_and_resumed_scenario_passes_for_a_good_canary(bucket_of, residue, requests):
    # the replay starts at batch 0 and nginx's round robin gives the canary every 4th request at 25 %: the
    # first interval is one fixed sample. With 120-150 requests in it and residue 0 or 3 its JS distance is
    # 0.10-0.12 with chi-square p near 1e-3 (counts scaled by 1.2): the fixed limit alone rolled it back.
    window = np.arange(requests)
    canary = _measurement(bucket_of["good"], window[window % 4 == residue], 1.2)
    stable = _measurement(bucket_of["stable"], window[window % 4 != residue], 1.2)
    rows = _score_verdicts(canary, stable)
    assert {r.verdict for r in rows.values()} == {PASS}, rows


def test_a_score_distance_above_the_fixed_limit_but_within_the_noise_floor_passes_and_names_the_floor():
    # one shape at two sizes, 4 and 400 times these counts: JS distance 0.104 > 0.1 at both
    canary_shape, stable_shape = np.array([30, 30, 25, 15]), np.array([40, 30, 20, 10])
    config = analysis.RolloutConfig(min_requests=1, thresholds=analysis.Thresholds(score_alpha=0.5))
    edges = [0.25, 0.5, 0.75, float("inf")]
    verdicts = {}
    for scale in (4, 400):
        canary = Measurement(100.0, 0.0, 0.02, (canary_shape * scale).tolist(), edges)
        stable = Measurement(100.0, 0.0, 0.02, (stable_shape * scale).tolist(), edges)
        _step, rows = analysis.judge(canary, stable, config)
        verdicts[scale] = {r.metric: r for r in rows}["score_js_distance"]
    assert verdicts[4].canary == pytest.approx(verdicts[400].canary)
    assert verdicts[4].canary > config.thresholds.max_score_js
    floor = distances.js_floor(4, 4 * 100, 4 * 100, analysis.SCORE_NOISE_ALPHA)
    assert verdicts[4].verdict == PASS and verdicts[4].threshold == pytest.approx(floor)
    assert floor > verdicts[4].canary
    assert "noise floor of 400 vs 400 scores on 4 buckets" in verdicts[4].reason
    assert verdicts[400].verdict == FAIL and verdicts[400].threshold == config.thresholds.max_score_js
