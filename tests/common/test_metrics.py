"""The one metrics module (core/classification_metrics.py) against sklearn.metrics and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from kfpkit.core import classification_metrics as m


def _scored(rows: int, seed: int = 0, positive_rate: float = 0.05):
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < positive_rate).astype(np.int64)
    scores = np.clip(0.3 * labels + rng.random(rows) * 0.7, 0.0, 1.0)
    return labels, scores


def test_ranking_and_probability_metrics_equal_sklearn_on_the_same_arrays():
    labels, scores = _scored(3000)
    got = m.split_metrics(labels, scores, threshold=0.5)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(labels, scores), abs=1e-12)
    assert got["brier_score"] == pytest.approx(skm.brier_score_loss(labels, scores), abs=1e-12)
    assert 0.5 < got["roc_auc"] < 1.0  # the scores carry signal: the comparison is not trivially 0.5 == 0.5
    assert got["decision_threshold"] == 0.5
    assert set(got) == {
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier_score",
        "ece",
        "precision",
        "recall",
        "f1",
        "decision_threshold",
    }


def test_log_loss_clips_certain_wrong_scores_instead_of_returning_infinity():
    labels = np.array([1, 0], dtype=np.int64)
    scores = np.array([0.0, 1.0])
    assert m.log_loss(labels, scores) == pytest.approx(-np.log(m.LOG_LOSS_EPS), rel=1e-6)
    assert m.log_loss(labels, scores) == pytest.approx(skm.log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7)))


def test_brier_score_of_the_constant_positive_rate_is_rate_times_one_minus_rate():
    labels = np.array([1] * 2 + [0] * 98, dtype=np.int64)
    assert m.brier_score(labels, np.full(100, 0.02)) == pytest.approx(0.02 * 0.98)


def test_reliability_bins_are_equal_width_with_counts_means_and_rates_by_hand():
    labels = np.array([0, 1, 0, 0, 1, 1, 1], dtype=np.int64)
    scores = np.array([0.01, 0.05, 0.5, 0.55, 0.6, 0.99, 1.0])
    bins = m.reliability_curve(labels, scores, bins=10)
    assert [b.rows for b in bins] == [2, 0, 0, 0, 0, 2, 1, 0, 0, 2]  # 1.0 falls into the last bin
    assert bins[0].lower == 0.0 and bins[0].upper == pytest.approx(0.1) and bins[-1].upper == 1.0
    assert bins[0].mean_score == pytest.approx(0.03) and bins[0].positive_rate == 0.5
    assert bins[5].mean_score == pytest.approx(0.525) and bins[5].positive_rate == 0.0
    assert bins[1].mean_score is None and bins[1].positive_rate is None
    expected = (2 * abs(0.03 - 0.5) + 2 * 0.525 + 1 * 0.4 + 2 * abs(0.995 - 1.0)) / 7
    assert m.expected_calibration_error(labels, scores, bins=10) == pytest.approx(expected)


def test_ece_uses_15_bins_and_is_near_zero_for_scores_drawn_as_the_true_probability():
    rng = np.random.default_rng(0)
    scores = rng.beta(0.5, 10.0, 200_000)
    labels = (rng.random(scores.shape[0]) < scores).astype(np.int64)
    assert len(m.reliability_curve(labels, scores)) == m.ECE_BINS == 15
    assert m.expected_calibration_error(labels, scores) < 0.003
    assert m.expected_calibration_error(labels, np.clip(scores * 3, 0, 1)) > 0.05  # overconfident: far off


def test_max_f1_threshold_maximizes_f1_over_every_candidate_threshold():
    labels, scores = _scored(1500, seed=4)
    threshold = m.max_f1_threshold(labels, scores)
    positive = labels == 1
    best = 0.0
    for t in np.unique(scores):  # brute force, F1 = 2TP / (2TP + FP + FN) at every candidate
        predicted = scores >= t
        tp = np.count_nonzero(predicted & positive)
        best = max(best, 2 * tp / (np.count_nonzero(predicted) + np.count_nonzero(positive)))
    assert skm.f1_score(labels, scores >= threshold) == pytest.approx(best)


def test_metrics_at_threshold_equal_sklearn_with_score_at_or_above_threshold_positive():
    labels, scores = _scored(2000, seed=3)
    threshold = float(np.quantile(scores, 0.9))
    scores[:5] = threshold  # ties exactly at the threshold count as predicted positive
    predicted = (scores >= threshold).astype(np.int64)
    counts = m.confusion_counts(labels, scores, threshold)
    got = m.threshold_metrics(counts)
    assert got["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert got["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert got["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert counts.matrix == skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    assert sum(map(sum, counts.matrix)) == labels.shape[0]


def test_metrics_at_a_threshold_above_every_score_are_zero_not_nan():
    labels, scores = _scored(500)
    counts = m.confusion_counts(labels, scores, 1.0 + 1e-9)
    assert counts.tp == counts.fp == 0
    assert counts.precision is None
    assert m.threshold_metrics(counts) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_roc_curve_is_downsampled_to_200_points_with_endpoints_and_finite_thresholds():
    labels, scores = _scored(20000, seed=5, positive_rate=0.3)
    full_fpr, full_tpr, _ = skm.roc_curve(labels, scores)
    assert full_fpr.shape[0] > 200  # otherwise nothing is downsampled
    roc = m.roc_points(labels, scores)
    assert len(roc.fpr) == len(roc.tpr) == len(roc.thresholds) == 200
    assert (roc.fpr[0], roc.tpr[0], roc.thresholds[0]) == (0.0, 0.0, 1.0)  # sklearn's inf clipped to 1.0
    assert (roc.fpr[-1], roc.tpr[-1]) == (1.0, 1.0)
    assert all(math.isfinite(t) and 0.0 <= t <= 1.0 for t in roc.thresholds)
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert np.all(np.diff(roc.thresholds) <= 0)
    # every kept point lies on sklearn's curve
    points = set(zip(full_fpr.tolist(), full_tpr.tolist(), strict=True))
    assert all((f, t) in points for f, t in zip(roc.fpr, roc.tpr, strict=True))


def test_short_roc_curve_is_kept_whole():
    labels = np.array([0, 0, 1, 1, 0, 1], dtype=np.int64)
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    fpr, tpr, thresholds = skm.roc_curve(labels, scores)
    roc = m.roc_points(labels, scores)
    assert roc.fpr == fpr.tolist() and roc.tpr == tpr.tolist()
    assert roc.thresholds == [1.0, *thresholds[1:].tolist()]


def test_downsample_indices_keep_first_and_last_and_never_exceed_the_limit():
    for count in (1, 2, 199, 200, 201, 1000, 12345):
        idx = m.downsample_indices(count, 200)
        assert len(idx) == min(count, 200)
        assert idx[0] == 0 and idx[-1] == count - 1
        assert np.all(np.diff(idx) > 0)


def test_slice_metrics_per_value_with_na_for_one_class_slices_and_missing_grouped():
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=np.int64)
    scores = np.array([0.9, 0.2, 0.6, 0.4, 0.1, 0.3, 0.7, 0.2, 0.8, 0.1])
    values = ["a", "a", "a", "a", "b", "b", "b", None, np.nan, pd.NA]
    slices = {s.value: s for s in m.slice_metrics(labels, scores, values, threshold=0.5)}
    assert set(slices) == {"a", "b", m.MISSING_SLICE_VALUE}
    a, b, missing = slices["a"], slices["b"], slices[m.MISSING_SLICE_VALUE]
    assert (a.rows, a.positives) == (4, 2)
    assert a.roc_auc == pytest.approx(skm.roc_auc_score(labels[:4], scores[:4]))
    assert a.pr_auc == pytest.approx(skm.average_precision_score(labels[:4], scores[:4]))
    assert a.recall == pytest.approx(0.5)  # 0.9 caught, 0.4 missed
    assert a.precision == pytest.approx(0.5)  # 0.9 and 0.6 predicted positive
    assert (b.rows, b.positives) == (3, 0)
    assert b.roc_auc is None and b.pr_auc is None and b.recall is None
    assert b.precision == 0.0  # one row predicted positive (0.7), wrongly
    assert (missing.rows, missing.positives) == (3, 1)
    assert sum(s.rows for s in slices.values()) == labels.shape[0]
    # largest first, ties by value
    assert [s.value for s in m.slice_metrics(labels, scores, values, 0.5)] == ["a", "(missing)", "b"]


def test_slices_are_ordered_largest_first_and_integral_floats_lose_the_decimal():
    labels = np.array([0, 1, 0, 1, 0, 1], dtype=np.int64)
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])
    values = [3.0, 3.0, 3.0, 7, 7, "x"]
    slices = m.slice_metrics(labels, scores, values, 0.5)
    assert [(s.value, s.rows) for s in slices] == [("3", 3), ("7", 2), ("x", 1)]
    assert slices[2].precision == 1.0 and slices[2].recall == 1.0 and slices[2].roc_auc is None


@pytest.mark.parametrize("seed", [0, 1])
def test_ranking_metrics_and_curves_equal_sklearn_to_the_last_bit_with_ties_float32_scores_and_one_class(seed):
    rng = np.random.default_rng(seed)
    compared = 0
    for case in range(400):
        n = int(rng.choice([1, 2, 3, 10, 300, 3000]))
        labels = (rng.random(n) < rng.choice([0.0, 0.02, 0.3, 1.0])).astype(rng.choice([np.int64, np.float64, bool]))
        scores = rng.random(n)
        scores = [scores, np.round(scores, 2), scores.astype(np.float32), np.round(scores * 3) / 3][case % 4]
        if len(np.unique(labels)) == 2:
            assert m.roc_auc(labels, scores) == skm.roc_auc_score(labels, scores)
            fpr, tpr, thresholds = skm.roc_curve(labels, scores)
            roc = m.roc_points(labels, scores, max_points=10**6)
            assert roc.fpr == fpr.tolist() and roc.tpr == tpr.tolist()
            assert roc.thresholds == np.clip(thresholds, 0.0, 1.0).tolist()
            compared += 1
        else:
            assert math.isnan(m.roc_auc(labels, scores))  # sklearn: NaN and a warning
        if labels.sum() > 0:
            assert m.pr_auc(labels, scores) == skm.average_precision_score(labels, scores)
            precision, recall, thresholds = skm.precision_recall_curve(labels, scores)
            f1 = np.divide(
                2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
            )
            assert m.max_f1_threshold(labels, scores) == float(thresholds[int(np.argmax(f1[:-1]))])
    assert compared > 50


def test_ranking_metrics_refuse_nan_scores_as_sklearn_does():
    with pytest.raises(ValueError, match="finite"):
        m.pr_auc(np.array([0, 1]), np.array([0.2, np.nan]))
    with pytest.raises(ValueError, match="NaN"):
        skm.average_precision_score(np.array([0, 1]), np.array([0.2, np.nan]))  # sklearn: "Input contains NaN"
