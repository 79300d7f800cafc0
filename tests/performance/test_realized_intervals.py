"""Realized-metric intervals of large cohorts (grouped Bayesian bootstrap) cover as the row bootstrap does."""

import numpy as np

from kfpkit.components.performance import logic
from kfpkit.core import bootstrap, classification_metrics

JUDGED = ("pr_auc", "roc_auc", "precision", "recall", "f1")


def _draw(rows, rng):
    scores = 1.0 / (1.0 + np.exp(-(1.5 * rng.normal(size=rows) - 3.0)))  # calibrated, ~8% positives
    return (rng.random(rows) < scores).astype(np.int64), scores


def test_grouped_realized_intervals_cover_the_population_value_as_the_row_bootstrap_does():
    """120 cohorts of 3,000 rows from one population (grouped: beyond 4 x 300 rows): how often each 95%
    interval holds the population's value, for the realized intervals and for the row bootstrap on the same
    rows. Both are stratified (class counts held), which narrows precision (its prevalence term is held
    too): the grouped scheme must not cover worse than the rows' own bootstrap, metric by metric."""
    threshold, replicates = 0.2, 120
    labels, scores = _draw(1_000_000, np.random.default_rng(99))
    truth = classification_metrics.split_metrics(labels, scores, threshold)
    settings = logic.PerformanceSettings(resamples=200)
    rng = np.random.default_rng(0)
    grouped = {name: 0 for name in JUDGED}
    rows = {name: 0 for name in JUDGED}
    for _ in range(replicates):
        y, s = _draw(3000, rng)
        realized = logic.realized_metrics(y, s, threshold, settings)
        plain = bootstrap.intervals(y, s, threshold, JUDGED, 200, settings.level, settings.seed)
        for name in JUDGED:
            grouped[name] += realized[name].low <= truth[name] <= realized[name].high
            rows[name] += plain[name].low <= truth[name] <= plain[name].high
    for name in JUDGED:
        # binomial noise of a coverage over 120 cohorts: ~0.02; the two share their rows, so closer still
        assert grouped[name] / replicates >= rows[name] / replicates - 0.04, (name, grouped, rows)
    for name in ("pr_auc", "roc_auc", "recall", "f1"):
        assert grouped[name] / replicates >= 0.88, (name, grouped)
