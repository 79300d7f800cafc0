"""The pure metric functions and the gate decision of evaluate, against sklearn.metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from kfpkit.components.evaluate import logic
from kfpkit.components.evaluate.logic import EvaluationError


def _scored(rows: int, seed: int = 0, positive_rate: float = 0.05):
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < positive_rate).astype(np.int64)
    scores = np.clip(0.3 * labels + rng.random(rows) * 0.7, 0.0, 1.0)
    return labels, scores


def test_ranking_metrics_equal_sklearn_on_the_same_arrays():
    labels, scores = _scored(3000)
    got = logic.ranking_metrics(labels, scores)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(labels, scores), abs=1e-12)
    assert got["brier_score"] == pytest.approx(skm.brier_score_loss(labels, scores), abs=1e-12)
    assert 0.5 < got["roc_auc"] < 1.0  # the scores carry signal: the comparison is not trivially 0.5 == 0.5


def test_metrics_at_threshold_equal_sklearn_with_score_at_or_above_threshold_positive():
    labels, scores = _scored(2000, seed=3)
    threshold = float(np.quantile(scores, 0.9))
    scores[:5] = threshold  # ties exactly at the threshold count as predicted positive
    predicted = (scores >= threshold).astype(np.int64)
    counts = logic.confusion_counts(labels, scores, threshold)
    got = logic.threshold_metrics(counts)
    assert got["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert got["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert got["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert counts.matrix == skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    assert sum(map(sum, counts.matrix)) == labels.shape[0]


def test_metrics_at_a_threshold_above_every_score_are_zero_not_nan():
    labels, scores = _scored(500)
    counts = logic.confusion_counts(labels, scores, 1.0 + 1e-9)
    assert counts.tp == counts.fp == 0
    assert counts.precision is None
    assert logic.threshold_metrics(counts) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("value", [0, 1])
def test_single_class_eval_labels_fail_saying_both_classes_are_needed(value):
    labels = np.full(50, value, dtype=np.int64)
    with pytest.raises(EvaluationError, match="both classes"):
        logic.ranking_metrics(labels, np.linspace(0, 1, 50))


def test_roc_curve_is_downsampled_to_200_points_with_endpoints_and_finite_thresholds():
    labels, scores = _scored(20000, seed=5, positive_rate=0.3)
    full_fpr, full_tpr, _ = skm.roc_curve(labels, scores)
    assert full_fpr.shape[0] > 200  # otherwise nothing is downsampled
    roc = logic.roc_points(labels, scores)
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
    roc = logic.roc_points(labels, scores)
    assert roc.fpr == fpr.tolist() and roc.tpr == tpr.tolist()
    assert roc.thresholds == [1.0, *thresholds[1:].tolist()]


def test_downsample_indices_keep_first_and_last_and_never_exceed_the_limit():
    for count in (1, 2, 199, 200, 201, 1000, 12345):
        idx = logic.downsample_indices(count, 200)
        assert len(idx) == min(count, 200)
        assert idx[0] == 0 and idx[-1] == count - 1
        assert np.all(np.diff(idx) > 0)


def test_slice_metrics_per_value_with_na_for_one_class_slices_and_missing_grouped():
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=np.int64)
    scores = np.array([0.9, 0.2, 0.6, 0.4, 0.1, 0.3, 0.7, 0.2, 0.8, 0.1])
    values = ["a", "a", "a", "a", "b", "b", "b", None, np.nan, pd.NA]
    slices = {s.value: s for s in logic.slice_metrics(labels, scores, values, threshold=0.5)}
    assert set(slices) == {"a", "b", logic.MISSING_SLICE_VALUE}
    a, b, missing = slices["a"], slices["b"], slices[logic.MISSING_SLICE_VALUE]
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
    assert [s.value for s in logic.slice_metrics(labels, scores, values, 0.5)] == ["a", "(missing)", "b"]


def test_slices_are_ordered_largest_first_and_integral_floats_lose_the_decimal():
    labels = np.array([0, 1, 0, 1, 0, 1], dtype=np.int64)
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])
    values = [3.0, 3.0, 3.0, 7, 7, "x"]
    slices = logic.slice_metrics(labels, scores, values, 0.5)
    assert [(s.value, s.rows) for s in slices] == [("3", 3), ("7", 2), ("x", 1)]
    assert slices[2].precision == 1.0 and slices[2].recall == 1.0 and slices[2].roc_auc is None


def test_gate_fails_below_the_floor_and_says_so():
    blessed, reasons = logic.blessing_decision(0.12, min_pr_auc=0.2, max_regression=0.01)
    assert blessed is False
    assert reasons == ["fail: PR-AUC 0.1200 < floor 0.2000"]


def test_gate_passes_above_the_floor_without_a_baseline():
    blessed, reasons = logic.blessing_decision(0.61, min_pr_auc=0.3, max_regression=0.01)
    assert blessed is True
    assert reasons == ["pass: PR-AUC 0.6100 ≥ floor 0.3000"]


def test_gate_fails_when_the_drop_against_the_baseline_exceeds_the_allowed_regression():
    blessed, reasons = logic.blessing_decision(
        0.61, min_pr_auc=0.3, max_regression=0.01, baseline_pr_auc=0.63, baseline_label="baseline fraud v3"
    )
    assert blessed is False
    assert reasons[0].startswith("pass: PR-AUC 0.6100 ≥ floor")
    assert reasons[1] == "fail: PR-AUC 0.6100 vs baseline fraud v3 0.6300: drop 0.0200 > allowed 0.0100"


def test_gate_passes_when_the_drop_is_within_the_allowed_regression():
    blessed, reasons = logic.blessing_decision(0.625, min_pr_auc=0.3, max_regression=0.01, baseline_pr_auc=0.63)
    assert blessed is True
    assert reasons[1] == "pass: PR-AUC 0.6250 vs baseline 0.6300: drop 0.0050 ≤ allowed 0.0100"


def test_gate_passes_a_model_equal_to_its_baseline_and_an_improvement():
    assert logic.blessing_decision(0.5, 0.3, 0.0, baseline_pr_auc=0.5)[0] is True
    blessed, reasons = logic.blessing_decision(0.7, 0.3, 0.0, baseline_pr_auc=0.5)
    assert blessed is True and "no drop (gain 0.2000)" in reasons[1]


def test_gate_needs_both_checks_floor_failure_is_not_rescued_by_a_worse_baseline():
    blessed, reasons = logic.blessing_decision(0.15, 0.2, 0.01, baseline_pr_auc=0.10)
    assert blessed is False
    assert reasons[0].startswith("fail:") and reasons[1].startswith("pass:")


@pytest.mark.parametrize(
    ("min_pr_auc", "max_regression", "name"),
    [
        (-0.1, 0.01, "min_pr_auc"),
        (1.5, 0.01, "min_pr_auc"),
        (float("nan"), 0.01, "min_pr_auc"),
        (0.2, -0.01, "max_regression"),
    ],
)
def test_invalid_gate_settings_fail_naming_the_setting(min_pr_auc, max_regression, name):
    with pytest.raises(EvaluationError, match=name):
        logic.check_gate_settings(min_pr_auc, max_regression)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0, 1, 2], r"only 0/1, found \[2\]"),
        ([0.0, 1.0, float("nan")], "missing values"),
        (["no", "yes"], "dtype"),
        ([], "no rows"),
    ],
)
def test_labels_that_are_not_binary_fail_naming_the_column(values, message):
    with pytest.raises(EvaluationError, match=rf"'is_fraud'.*{message}"):
        logic.binary_labels(np.asarray(values), "is_fraud")


def test_boolean_and_float_labels_become_int64():
    assert logic.binary_labels(np.array([True, False]), "y").tolist() == [1, 0]
    assert logic.binary_labels(np.array([1.0, 0.0]), "y").dtype == np.int64


@pytest.mark.parametrize(("scores", "message"), [([0.1, float("nan")], "non-finite"), ([0.1, 1.2], "outside")])
def test_invalid_model_scores_are_rejected(scores, message):
    with pytest.raises(EvaluationError, match=message):
        logic.checked_scores(np.array(scores), 2, "model m")
