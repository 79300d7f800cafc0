"""kfpkit.core.bootstrap: weighted metrics equal the metrics module, intervals cover, pairs cancel shared noise."""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit.core import bootstrap, classification_metrics


def _rows(n: int, seed: int = 1, ties: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.08).astype(int)
    labels[:2] = [1, 0]
    scores = np.clip(rng.random(n) * 0.4 + labels * 0.25, 0.0, 1.0)
    return labels, (np.round(scores, 2) if ties else scores)


@pytest.mark.parametrize("ties", [True, False])
def test_unit_weights_give_the_metrics_module_values(ties: bool) -> None:
    labels, scores = _rows(3000, ties=ties)
    rows = bootstrap.WeightedRows(labels, scores, threshold=0.3)
    weighted = rows.metrics(np.ones((1, rows.rows)))
    expected = classification_metrics.split_metrics(labels, scores, 0.3)
    for name in bootstrap.METRICS:
        assert weighted[name][0] == pytest.approx(expected[name], abs=1e-12), name


def test_integer_weights_equal_repeating_the_rows() -> None:
    labels, scores = _rows(500)
    rows = bootstrap.WeightedRows(labels, scores, threshold=0.3)
    counts = np.random.default_rng(5).integers(0, 3, labels.size)
    counts[:2] = 1
    weighted = rows.metrics(counts[rows.order].astype(float)[None, :])
    repeated = np.repeat(np.arange(labels.size), counts)
    expected = classification_metrics.split_metrics(labels[repeated], scores[repeated], 0.3)
    for name in bootstrap.METRICS:
        assert weighted[name][0] == pytest.approx(expected[name], abs=1e-12), name


def test_resamples_keep_the_class_counts_and_the_row_count() -> None:
    labels, scores = _rows(700)
    rows = bootstrap.WeightedRows(labels, scores)
    for w in rows.resample_weights(50, seed=3):
        assert np.all(w.sum(axis=1) == labels.size)
        assert np.all(w[:, rows.y == 1].sum(axis=1) == labels.sum())


def test_intervals_are_reproducible_by_seed_and_contain_the_point() -> None:
    labels, scores = _rows(2000)
    first = bootstrap.intervals(labels, scores, threshold=0.3, resamples=300, seed=7)
    again = bootstrap.intervals(labels, scores, threshold=0.3, resamples=300, seed=7)
    other = bootstrap.intervals(labels, scores, threshold=0.3, resamples=300, seed=8)
    assert first == again
    assert first["pr_auc"] != other["pr_auc"]
    for name, interval in first.items():
        assert interval.low <= interval.point <= interval.high, name


def test_the_pr_auc_interval_covers_the_population_value_about_as_often_as_stated() -> None:
    # the population: a large sample's PR-AUC; 40 small test splits drawn from it
    labels, scores = _rows(400_000, seed=11)
    population = classification_metrics.pr_auc(labels, scores)
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        pick = rng.choice(labels.size, 1500, replace=False)
        interval = bootstrap.intervals(labels[pick], scores[pick], names=["pr_auc"], resamples=400, seed=trial)
        covered += interval["pr_auc"].position(population) == "across"
    assert covered >= 33  # 95% nominal; percentile intervals on ~120 positives run a little narrow


def test_a_metric_undefined_on_one_class_gives_an_empty_interval() -> None:
    interval = bootstrap.intervals(np.zeros(20, dtype=int), np.linspace(0, 1, 20), resamples=20)
    assert interval["roc_auc"].low is None and interval["roc_auc"].position(0.5) == "across"
    assert interval["brier_score"].point is not None


def test_paired_difference_of_a_model_with_itself_is_exactly_zero() -> None:
    labels, scores = _rows(1000)
    difference = bootstrap.paired_difference(labels, scores, scores, "pr_auc", resamples=200)
    assert difference.interval.low == difference.interval.high == difference.interval.point == 0.0
    assert difference.share_worse_by_more_than(0.0) == 0.0


def test_paired_difference_is_narrower_than_the_two_separate_intervals() -> None:
    labels, scores = _rows(3000)
    noisy = np.clip(scores + np.random.default_rng(2).normal(0, 0.02, scores.size), 0, 1)
    paired = bootstrap.paired_difference(labels, scores, noisy, "pr_auc", resamples=300).interval
    alone = bootstrap.intervals(labels, scores, names=["pr_auc"], resamples=300)["pr_auc"]
    assert paired.high - paired.low < 0.5 * (alone.high - alone.low)


def test_a_much_worse_candidate_is_worse_by_the_margin_in_every_resample() -> None:
    labels, scores = _rows(3000)
    useless = np.random.default_rng(4).random(scores.size)
    difference = bootstrap.paired_difference(labels, scores, useless, "pr_auc", resamples=200)
    assert difference.share_worse_by_more_than(0.1) == 1.0
    brier = bootstrap.paired_difference(labels, scores, useless, "brier_score", resamples=200)
    assert brier.interval.low > 0 and brier.share_worse_by_more_than(0.05) == 1.0


def test_unknown_metrics_and_bad_levels_are_refused() -> None:
    labels, scores = _rows(100)
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap.intervals(labels, scores, names=["accuracy"])
    with pytest.raises(ValueError, match="level"):
        bootstrap.intervals(labels, scores, level=1.5)


def test_score_groups_keep_the_counts_at_the_threshold_and_in_every_ece_bin() -> None:
    labels, scores = _rows(20_000, ties=False)
    pseudo_labels, pseudo_scores, counts = bootstrap.score_groups(labels, scores, threshold=0.3, groups=200)
    assert pseudo_labels.size < 500 and counts.sum() == labels.size
    assert counts[pseudo_labels == 1].sum() == labels.sum()
    grouped = bootstrap.WeightedRows(pseudo_labels, pseudo_scores, 0.3, counts)
    exact = classification_metrics.split_metrics(labels, scores, 0.3)
    values = grouped.metrics(grouped.unit_weights)
    for name in ("precision", "recall", "f1"):
        assert values[name][0] == pytest.approx(exact[name], abs=1e-12), name
    for name in ("pr_auc", "roc_auc", "brier_score", "ece"):  # only the order inside a narrow group is lost
        assert values[name][0] == pytest.approx(exact[name], abs=0.01), name


def test_grouped_resamples_keep_the_class_counts() -> None:
    labels, scores = _rows(5000, ties=False)
    pseudo_labels, pseudo_scores, counts = bootstrap.score_groups(labels, scores, 0.3, groups=100)
    rows = bootstrap.WeightedRows(pseudo_labels, pseudo_scores, 0.3, counts)
    for w in rows.resample_weights(40, seed=2):  # Bayesian-bootstrap weights: exact up to float rounding
        assert w.sum(axis=1) == pytest.approx(np.full(40, labels.size), rel=1e-12)
        assert w[:, rows.y == 1].sum(axis=1) == pytest.approx(np.full(40, labels.sum()), rel=1e-12)
        assert np.all(w > 0) and np.unique(w).size > w.size // 2  # every group drawn, not a fixed pattern


def test_grouped_intervals_agree_with_the_row_bootstrap_within_its_own_seed_noise() -> None:
    labels, scores = _rows(30_000, seed=4, ties=False)
    rows = bootstrap.intervals(labels, scores, 0.3, resamples=1000, seed=1)
    other_seed = bootstrap.intervals(labels, scores, 0.3, resamples=1000, seed=2)
    grouped = bootstrap.intervals(labels, scores, 0.3, resamples=1000, seed=1, groups=300)
    for name, interval in rows.items():
        width = interval.high - interval.low
        assert grouped[name].point == interval.point, name  # the point is the rows' own
        noise = max(abs(other_seed[name].low - interval.low), abs(other_seed[name].high - interval.high))
        difference = max(abs(grouped[name].low - interval.low), abs(grouped[name].high - interval.high))
        assert difference <= max(2 * noise, 0.08 * width), (name, difference / width, noise / width)
        assert grouped[name].low <= grouped[name].point <= grouped[name].high, name


def test_few_rows_are_never_grouped() -> None:
    labels, scores = _rows(1000)
    assert bootstrap.intervals(labels, scores, 0.3, resamples=50, groups=300) == bootstrap.intervals(
        labels, scores, 0.3, resamples=50
    )
