"""Stratified, seeded bootstrap intervals for the classification metrics, and the paired difference of two models.

The one home of "how sure is this number": evaluate's confidence intervals and regression gate, and the
performance monitor's realized metrics per cohort, all come from here.

How it works. A bootstrap resample of ``n`` rows is a vector of multiplicities (how often each row was
drawn), so every metric is computed as a *weighted* metric on the rows in one fixed order, sorted once by
score. Resamples are stratified: positives and negatives are drawn separately, so every resample keeps the
split's class counts and ranking metrics stay defined. Many resamples are evaluated at once as a matrix of
weights, in chunks bounded in memory, which makes 1,000 resamples of 15k rows take a fraction of a second
where 1,000 calls of sklearn would take seconds.

The weighted metrics equal :mod:`kfpkit.core.classification_metrics` on unit weights (tested), with the same
conventions: ROC-AUC counts ties as half, PR-AUC is sklearn's average precision over distinct thresholds,
ECE uses :data:`~kfpkit.core.classification_metrics.ECE_BINS` equal-width bins, and precision, recall and F1
at the threshold (``score >= threshold``) are 0.0 where undefined.

Intervals are percentile intervals of the resampled values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Sequence

import numpy as np

from kfpkit.core.classification_metrics import ECE_BINS

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
# weights held at once: resamples x rows <= this many float64 values (~8 MB; larger chunks run slower)
_CHUNK_CELLS = 1_000_000

RANKING_METRICS = ("pr_auc", "roc_auc")
PROBABILITY_METRICS = ("brier_score", "ece")
THRESHOLD_METRICS = ("precision", "recall", "f1")
METRICS = RANKING_METRICS + PROBABILITY_METRICS + THRESHOLD_METRICS
# metrics where a higher value is better (for the others, brier_score and ece, lower is better)
HIGHER_IS_BETTER = frozenset(RANKING_METRICS + THRESHOLD_METRICS)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval.

    Attributes:
        point: the metric on the rows as they are.
        low: lower bound of the interval (``None`` where the metric is undefined on these rows).
        high: upper bound of the interval.
        level: the interval's confidence level, e.g. 0.95.
        resamples: how many bootstrap resamples it rests on.
    """

    point: Optional[float]
    low: Optional[float]
    high: Optional[float]
    level: float
    resamples: int

    def to_dict(self) -> Dict[str, Optional[float]]:
        """Plain JSON form: ``point``, ``low``, ``high``, ``level``, ``resamples``."""
        return {
            "point": self.point,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "resamples": float(self.resamples),
        }

    def position(self, bound: float) -> str:
        """Where the interval lies relative to ``bound``: ``"above"``, ``"below"`` or ``"across"``."""
        if self.low is None or self.high is None:
            return "across"
        if self.low > bound:
            return "above"
        if self.high < bound:
            return "below"
        return "across"


@dataclass(frozen=True)
class PairedDifference:
    """The bootstrap distribution of ``metric(candidate) - metric(baseline)`` on the same resampled rows.

    Attributes:
        metric: the metric's name (one of :data:`METRICS`).
        interval: the difference's point value and percentile interval.
        differences: the resampled differences (not serialized).
    """

    metric: str
    interval: Interval
    differences: np.ndarray = field(repr=False)

    def share_worse_by_more_than(self, margin: float) -> float:
        """Share of resamples where the candidate is worse than the baseline by more than ``margin``.

        "Worse" follows the metric's direction: a drop for PR-AUC, a rise for the Brier score.
        """
        values = self.differences[np.isfinite(self.differences)]
        if values.size == 0:
            return 0.0
        worse = -values if self.metric in HIGHER_IS_BETTER else values
        return float(np.mean(worse > margin))


class WeightedRows:
    """Labelled, scored rows prepared once for many weighted metric evaluations.

    Args:
        labels: 0/1 labels, ``[n]``.
        scores: probabilities of the positive class, ``[n]``.
        threshold: the decision threshold for precision, recall and F1.
    """

    def __init__(
        self, labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, counts: Optional[np.ndarray] = None
    ) -> None:
        y = np.asarray(labels).astype(np.float64).ravel()
        p = np.asarray(scores, dtype=np.float64).ravel()
        if y.shape != p.shape:
            raise ValueError(f"labels have {y.shape[0]} rows, scores {p.shape[0]}")
        if y.size == 0:
            raise ValueError("bootstrap needs at least one row")
        self.order = np.argsort(-p, kind="mergesort")
        self.y = y[self.order]
        self.p = p[self.order]
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64).ravel()[self.order]
        if self.counts is not None and (self.counts.shape != y.shape or np.any(self.counts < 1)):
            raise ValueError("counts must hold one positive count per row")
        change = np.flatnonzero(np.diff(self.p)) + 1
        self.group_starts = np.concatenate(([0], change))
        predicted = self.p >= threshold
        self.tp_mask = (self.y == 1) & predicted
        self.fp_mask = (self.y == 0) & predicted
        self.fn_mask = (self.y == 1) & ~predicted
        # rows are sorted by score: each ECE bin is one run of rows, summed by reduceat (no one-hot matrix)
        bins = np.minimum((self.p * ECE_BINS).astype(np.int64), ECE_BINS - 1).clip(0)
        self.bin_starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
        self.squared_error = (self.p - self.y) ** 2
        self.positives = np.flatnonzero(self.y == 1)
        self.negatives = np.flatnonzero(self.y == 0)

    @property
    def unit_weights(self) -> np.ndarray:
        """The weights of the rows as they are, ``[1, n]`` (their counts when the rows stand for groups)."""
        ones = np.ones(self.rows) if self.counts is None else self.counts.astype(np.float64)
        return ones[None, :]

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.y.size)

    def metrics(self, weights: np.ndarray, names: Sequence[str] = METRICS) -> Dict[str, np.ndarray]:
        """Every metric in ``names`` for each row of ``weights`` (``[k, n]``, in the sorted row order).

        Returns:
            name -> ``[k]`` values; NaN where a ranking metric is undefined (no positive or no negative).
        """
        w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        out: Dict[str, np.ndarray] = {}
        total = w.sum(axis=1)
        if any(name in RANKING_METRICS for name in names):
            out.update(self._ranking(w))
        if "brier_score" in names:
            out["brier_score"] = _row_dot(w, self.squared_error) / total
        if "ece" in names:
            score_sums = np.add.reduceat(w * self.p, self.bin_starts, axis=1)
            label_sums = np.add.reduceat(w * self.y, self.bin_starts, axis=1)
            out["ece"] = np.abs(score_sums - label_sums).sum(axis=1) / total
        if any(name in THRESHOLD_METRICS for name in names):
            out.update(self._at_threshold(w))
        return {name: out[name] for name in names}

    def _ranking(self, w: np.ndarray) -> Dict[str, np.ndarray]:
        tp, fp = w * self.y, w * (1.0 - self.y)
        if self.group_starts.size < self.rows:  # tied scores form one threshold
            tp = np.add.reduceat(tp, self.group_starts, axis=1)
            fp = np.add.reduceat(fp, self.group_starts, axis=1)
        cum_tp, cum_fp = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
        positives, negatives = cum_tp[:, -1], cum_fp[:, -1]
        predicted = cum_tp + cum_fp
        precision = np.divide(cum_tp, predicted, out=np.zeros_like(cum_tp), where=predicted > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pr_auc = (tp * precision).sum(axis=1) / positives
            # a positive beats every negative of a lower score, and ties with those of its own score count half
            wins = (tp * (negatives[:, None] - cum_fp) + 0.5 * tp * fp).sum(axis=1)
            roc_auc = wins / (positives * negatives)
        return {"pr_auc": pr_auc, "roc_auc": roc_auc}

    def _at_threshold(self, w: np.ndarray) -> Dict[str, np.ndarray]:
        tp, fp, fn = _row_dot(w, self.tp_mask), _row_dot(w, self.fp_mask), _row_dot(w, self.fn_mask)
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
        both = precision + recall
        f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
        return {"precision": precision, "recall": recall, "f1": f1}

    def resample_weights(self, resamples: int, seed: int) -> Iterator[np.ndarray]:
        """Stratified bootstrap weights, ``[chunk, n]`` at a time, ``resamples`` rows in all, reproducible by seed.

        Rows with counts (score groups, :func:`score_groups`) get the weights of a stratified Bayesian
        bootstrap (Rubin 1981) of the rows they stand for: every row a Gamma(1) weight, scaled so that each
        class keeps its row count; a group's weight, the sum of its rows', is then Gamma(count) drawn
        directly, exactly. Its weights have the mean and covariance of the multinomial row resample times
        ``n / (n + 1)`` (grouping applies beyond thousands of rows: the same intervals), at a quarter of the cost
        of multinomial draws (each one a chain of binomials).
        """
        rng = np.random.default_rng(seed)
        chunk = max(1, min(resamples, _CHUNK_CELLS // max(self.rows, 1)))
        done = 0
        while done < resamples:
            k = min(chunk, resamples - done)
            w = np.zeros((k, self.rows))
            for members in (self.positives, self.negatives):
                m = members.size
                if m and self.counts is not None:
                    counts = self.counts[members]
                    gamma = rng.standard_gamma(counts.astype(np.float64), size=(k, m))
                    w[:, members] = gamma * (float(counts.sum()) / gamma.sum(axis=1, keepdims=True))
                elif m:
                    # m draws with replacement per resample, counted per member: a flat bincount of the k * m draws
                    draws = rng.integers(0, m, size=(k, m)) + (np.arange(k) * m)[:, None]
                    w[:, members] = np.bincount(draws.ravel(), minlength=k * m).reshape(k, m)
            done += k
            yield w


def _row_dot(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``w @ v`` without BLAS: its threads only spin on these small products (and on a busy machine)."""
    return np.einsum("kn,n->k", w, v.astype(np.float64))


def _percentiles(values: np.ndarray, level: float) -> tuple[Optional[float], Optional[float]]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _point(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def score_groups(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, groups: int = 1000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows compressed into narrow score groups: the pseudo-rows of a grouped bootstrap.

    The group edges are ``groups / 2`` quantiles of the positives' scores and as many of the negatives'
    (so that the top ranks, where the positives are, stay finely cut), and no group straddles the threshold
    or an ECE bin edge. Each group becomes at most two pseudo-rows, its positives and its negatives, both at
    the group's mean score (clipped to the group's score range), with their row counts as weights: so the
    counts at the threshold and per ECE bin are exact, and ranking metrics count the pairs inside one group
    as ties.

    Args:
        labels: 0/1 labels, ``[n]``.
        scores: positive-class probabilities, ``[n]``.
        threshold: decision threshold of precision, recall and F1.
        groups: about how many score groups.

    Returns:
        ``(labels, scores, counts)`` of the pseudo-rows, in score order.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(p, kind="mergesort")
    y, p = y[order], p[order]
    cuts = np.linspace(0.0, 1.0, max(groups // 2, 1) + 1)[1:-1]
    edges = np.unique(np.concatenate([np.quantile(p[y == c], cuts) for c in (0, 1) if np.any(y == c)]))
    # quantile, ECE bin and side of the threshold all rise with the score: one key, constant within a group
    key = np.searchsorted(edges, p, side="right") * (2 * ECE_BINS)
    key += np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1).clip(0) * 2 + (p >= threshold)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    sizes = np.diff(np.append(starts, p.size))
    positives = np.add.reduceat(y, starts)
    mean = np.clip(np.add.reduceat(p, starts) / sizes, p[starts], p[starts + sizes - 1])
    counts = np.stack([sizes - positives, positives], axis=1).ravel()
    used = counts > 0
    return np.tile([0, 1], starts.size)[used], np.repeat(mean, 2)[used], counts[used]


def intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    names: Sequence[str] = METRICS,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    groups: Optional[int] = None,
) -> Dict[str, Interval]:
    """Bootstrap intervals of several metrics of one model, all from the same resamples.

    With ``groups``, rows beyond ``4 * groups`` are resampled as score groups (:func:`score_groups`): a
    resample draws each class's group weights as a stratified Bayesian bootstrap of the rows (Gamma(count)
    per group, see :meth:`WeightedRows.resample_weights`), so its cost follows the groups and not the
    rows. The point stays the metric of the rows; the
    interval is the grouped percentile interval moved by (point - grouped point), i.e. the grouped
    bootstrap's spread around the exact value. Grouping merges rows of nearly equal score: counts at the
    threshold and per ECE bin stay exact, and ranking metrics lose only the order inside a group.

    Args:
        labels: 0/1 labels.
        scores: positive-class probabilities.
        threshold: decision threshold of precision, recall and F1.
        names: which metrics (a subset of :data:`METRICS`).
        resamples: number of stratified bootstrap resamples.
        level: confidence level of the percentile intervals.
        seed: seed of the resampling.
        groups: score groups of a grouped bootstrap for many rows (``None``: always the rows).

    Returns:
        name -> :class:`Interval`; a metric undefined on these rows (ROC-AUC with one class) has ``None``s.
    """
    _check(names, resamples, level)
    rows = WeightedRows(labels, scores, threshold)
    points = rows.metrics(rows.unit_weights, names)
    shift = {name: 0.0 for name in names}
    if groups is not None and rows.rows > 4 * groups:
        # the rows sorted by score already (ascending, reversed): score_groups' own sort is then a single pass
        pseudo_labels, pseudo_scores, counts = score_groups(rows.y[::-1], rows.p[::-1], threshold, groups)
        rows = WeightedRows(pseudo_labels, pseudo_scores, threshold, counts)
        grouped = rows.metrics(rows.unit_weights, names)
        shift = {name: float(points[name][0] - grouped[name][0]) for name in names}
    values: Dict[str, list[np.ndarray]] = {name: [] for name in names}
    for w in rows.resample_weights(resamples, seed):
        for name, v in rows.metrics(w, names).items():
            values[name].append(v)
    out = {}
    for name in names:
        # every metric here lies in [0, 1]; a shifted bound may not leave it
        low, high = _percentiles(np.clip(np.concatenate(values[name]) + shift[name], 0.0, 1.0), level)
        out[name] = Interval(_point(points[name][0]), low, high, level, resamples)
    return out


def paired_difference(
    labels: np.ndarray,
    baseline_scores: np.ndarray,
    candidate_scores: np.ndarray,
    metric: str,
    threshold: float = 0.5,
    baseline_threshold: Optional[float] = None,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> PairedDifference:
    """``metric(candidate) - metric(baseline)`` on the same rows, with its paired bootstrap distribution.

    Both models are scored on every resample of the *same* rows, so the noise both share (which rows
    happened to land in the test split) cancels out of the difference.

    Args:
        labels: 0/1 labels of the shared rows.
        baseline_scores: the baseline model's probabilities on those rows.
        candidate_scores: the candidate's probabilities on those rows.
        metric: one of :data:`METRICS`.
        threshold: the candidate's decision threshold (threshold metrics only).
        baseline_threshold: the baseline's decision threshold; defaults to ``threshold``.
        resamples: number of stratified bootstrap resamples.
        level: confidence level of the interval.
        seed: seed of the resampling.

    Returns:
        The difference's interval and resampled values.
    """
    _check([metric], resamples, level)
    candidate = WeightedRows(labels, candidate_scores, threshold)
    baseline = WeightedRows(labels, baseline_scores, threshold if baseline_threshold is None else baseline_threshold)
    # weights are drawn in the candidate's row order; the baseline sees the same original rows re-ordered
    to_baseline = np.empty(candidate.rows, dtype=np.int64)
    to_baseline[baseline.order] = np.arange(candidate.rows)
    position = to_baseline[candidate.order]

    def difference(w: np.ndarray) -> np.ndarray:
        wb = np.zeros_like(w)
        wb[:, position] = w
        return candidate.metrics(w, [metric])[metric] - baseline.metrics(wb, [metric])[metric]

    point = difference(np.ones((1, candidate.rows)))[0]
    values = np.concatenate([difference(w) for w in candidate.resample_weights(resamples, seed)])
    low, high = _percentiles(values, level)
    return PairedDifference(metric, Interval(_point(point), low, high, level, resamples), values)


def _check(names: Sequence[str], resamples: int, level: float) -> None:
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
