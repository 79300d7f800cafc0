"""The reference band: the card's intervals when it has them, else an honest normal approximation."""

import math

import pytest

from kfpkit.components.performance import reference as ref
from kfpkit.components.performance.errors import PerformanceError
from kfpkit.core.model_card import DataLineage, ModelCard, SplitLineage

METRICS = {"pr_auc": 0.4, "roc_auc": 0.85, "precision": 0.35, "recall": 0.55, "f1": 0.43, "brier_score": 0.07}


def _card(metrics, rows=15_000, label_rate=0.08, split="test"):
    return ModelCard(
        framework="sklearn",
        model_file="model.skops",
        label_column="y",
        feature_order=["x"],
        decision_threshold=0.2,
        data=DataLineage("s", {"eval": SplitLineage("0" * 64, rows, label_rate)}),
        metrics={split: metrics},
    )


def test_the_cards_test_intervals_are_the_band_when_present():
    card = _card(METRICS)
    card.intervals = {"test": {"recall": {"point": 0.55, "low": 0.5, "high": 0.6, "level": 0.95, "resamples": 1000.0}}}
    reference = ref.reference_from_card(card, 0.95)
    assert reference.split == "test"
    recall = reference.metrics["recall"]
    assert (recall.point, recall.low, recall.high, recall.source) == (0.55, 0.5, 0.6, ref.CARD_INTERVAL)
    assert reference.metrics["precision"].source == ref.POINT_ONLY  # a metric the intervals leave out


def test_without_intervals_the_band_is_the_normal_approximation_at_the_splits_size():
    reference = ref.reference_from_card(_card(METRICS), 0.95)
    positives = 15_000 * 0.08
    half = 1.959964 * math.sqrt(0.55 * 0.45 / positives)
    recall = reference.metrics["recall"]
    assert recall.source == ref.NORMAL_APPROXIMATION and reference.rows == 15_000
    assert (recall.low, recall.high) == (pytest.approx(0.55 - half, abs=1e-6), pytest.approx(0.55 + half, abs=1e-6))
    predicted = positives * 0.55 / 0.35
    precision = reference.metrics["precision"]
    assert precision.high - precision.low == pytest.approx(2 * 1.959964 * math.sqrt(0.35 * 0.65 / predicted), rel=1e-5)
    assert reference.metrics["brier_score"].source == ref.POINT_ONLY  # shown, not judged
    # a quarter of the rows: twice as wide
    small = ref.reference_from_card(_card(METRICS, rows=3_750), 0.95).metrics["recall"]
    assert small.high - small.low == pytest.approx(2 * (recall.high - recall.low), rel=1e-6)


def test_the_eval_metrics_are_the_fallback_and_a_card_without_judged_metrics_is_refused():
    assert ref.reference_from_card(_card(METRICS, split="eval"), 0.95).split == "eval"
    with pytest.raises(PerformanceError, match="no pr_auc / roc_auc / precision / recall / f1"):
        ref.reference_from_card(_card({"log_loss": 0.2}), 0.95)
