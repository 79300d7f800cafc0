"""The label-free estimator against a brute-force expected confusion matrix and against redrawn labels."""

import itertools

import numpy as np
import pytest

from kfpkit.components.performance import estimate as est


def _brute_force(scores, threshold):
    """Every label vector with its probability: exact E[TP], E[FP], E[FN], E[TN] and the realized metrics' law."""
    predicted = scores >= threshold
    expected = np.zeros(4)
    outcomes = []
    for labels in itertools.product((0, 1), repeat=scores.size):
        y = np.asarray(labels)
        p = float(np.prod(np.where(y == 1, scores, 1 - scores)))
        tp, fp = np.sum(y & predicted), np.sum((1 - y) & predicted)
        fn, tn = np.sum(y & ~predicted), np.sum((1 - y) & ~predicted)
        expected += p * np.array([tp, fp, fn, tn])
        outcomes.append((p, tp, fp, fn))
    return expected, outcomes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_expected_confusion_matrix_equals_the_brute_force_expectation(seed):
    scores = np.random.default_rng(seed).beta(0.8, 3.0, 12)
    threshold = float(np.quantile(scores, 0.6))
    expected, _ = _brute_force(scores, threshold)
    got = est.expected_confusion(scores, threshold)
    np.testing.assert_allclose([got.tp, got.fp, got.fn, got.tn], expected, rtol=1e-12, atol=1e-12)
    metrics = got.metrics()
    predicted = int(np.sum(scores >= threshold))
    assert metrics["precision"] == pytest.approx(expected[0] / predicted)  # E[TP / P] = E[TP] / P: P is known
    assert metrics["recall"] == pytest.approx(expected[0] / (expected[0] + expected[2]))
    assert metrics["f1"] == pytest.approx(2 * expected[0] / (2 * expected[0] + expected[1] + expected[2]))
    assert metrics["positive_rate"] == pytest.approx(scores.mean())


def test_the_interval_holds_the_brute_force_law_of_the_realized_precision_and_recall():
    scores = np.random.default_rng(5).beta(1.0, 2.0, 14)
    threshold = float(np.quantile(scores, 0.5))
    _, outcomes = _brute_force(scores, threshold)
    found = est.estimate(scores, threshold, resamples=20_000, level=0.9, seed=1)
    for name in ("precision", "recall"):
        _, low, high = found[name]
        mass = 0.0
        for p, tp, fp, fn in outcomes:
            value = tp / (tp + fp) if name == "precision" else (tp / (tp + fn) if tp + fn else None)
            if value is not None and low - 1e-9 <= value <= high + 1e-9:
                mass += p
        assert mass >= 0.88, f"{name}: the 90% interval [{low}, {high}] holds {mass:.3f} of the exact law"


def test_the_normal_branch_matches_redrawn_bernoulli_labels_on_many_rows():
    rng = np.random.default_rng(3)
    scores = rng.beta(0.6, 6.0, 50_000)
    threshold = 0.2
    found = est.estimate(scores, threshold, resamples=4000, level=0.95, seed=2)
    predicted = scores >= threshold
    draws = rng.random((400, scores.size)) < scores  # the realized labels, redrawn row by row
    tp = (draws & predicted).sum(axis=1)
    fn = (draws & ~predicted).sum(axis=1)
    recall = tp / (tp + fn)
    precision = tp / predicted.sum()
    for name, values in (("precision", precision), ("recall", recall)):
        point, low, high = found[name]
        assert point == pytest.approx(values.mean(), abs=0.002)
        width = np.percentile(values, 97.5) - np.percentile(values, 2.5)
        assert high - low == pytest.approx(width, rel=0.15), name


def test_no_rows_or_no_predicted_positive_gives_undefined_values_not_errors():
    assert est.estimate(np.array([]), 0.5)["precision"] == (None, None, None)
    found = est.estimate(np.array([0.1, 0.2, 0.3]), 0.9)
    assert found["precision"][0] is None
    assert found["positive_rate"][0] == pytest.approx(0.2)


def test_the_binned_law_is_the_exact_law_of_one_binomial_per_score_bin(monkeypatch):
    """The redraws of small sums invert the exact law of sum_b Binomial(n_b, p_b): brute-force convolution."""
    from math import comb

    scores = np.random.default_rng(7).beta(0.7, 4.0, 60)
    rows, mean = est._bins(scores)
    exact = np.array([1.0])
    for n, p in zip(rows.tolist(), mean.tolist(), strict=True):
        exact = np.convolve(exact, [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])
    start, cdf = est.binned_sum_law(scores)
    assert start == 0 and cdf.size == exact.size
    np.testing.assert_allclose(cdf, np.cumsum(exact), atol=1e-12)
    # many rows of small scores: the law over a window around the mean equals the law over every value
    many = np.random.default_rng(8).beta(1.0, 100.0, 40_000)
    start, cdf = est.binned_sum_law(many)
    assert start > 0 and cdf.size < many.size // 10
    monkeypatch.setattr(est, "TAIL_SPREADS", 1e6)
    whole_start, whole = est.binned_sum_law(many)
    assert whole_start == 0 and whole.size == many.size + 1
    np.testing.assert_allclose(cdf, whole[start : start + cdf.size], atol=1e-12)
    assert whole[start - 1] < 1e-15 and whole[start + cdf.size - 1] > 1 - 1e-12
