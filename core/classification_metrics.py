"""The one metrics module of kfpkit: what train and evaluate compute on a split, written once.

All functions take ``labels`` (int 0/1, ``[n]``) and ``scores`` (probabilities of the positive class,
``[n]``) as numpy arrays and return plain floats, lists or small dataclasses, so that model cards, KFP
metrics and reports carry the same numbers.

* ranking: ROC-AUC, PR-AUC (average precision);
* probability quality: log loss (scores clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``), Brier score,
  expected calibration error (ECE) over :data:`ECE_BINS` equal-width bins, and the reliability-curve data
  behind it;
* per slice of a column: rows, positives, ROC-AUC, PR-AUC, precision and recall;
* at a threshold (a row is positive when ``score >= threshold``, the convention of
  ``sklearn.metrics.precision_recall_curve``): confusion counts, precision, recall, F1, and the threshold
  that maximizes F1.

Nothing here imports sklearn: ROC-AUC, PR-AUC and the curves are computed as sklearn.metrics computes them, to
the last bit (tested), so that a task that only scores a model (evaluate) does not import sklearn and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

ECE_BINS = 15
LOG_LOSS_EPS = 1e-7
MAX_ROC_POINTS = 200


@dataclass
class ConfusionCounts:
    """Counts at a threshold: rows are the actual class, columns the predicted class."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def matrix(self) -> List[List[int]]:
        """``[[tn, fp], [fn, tp]]`` (class order 0, 1)."""
        return [[self.tn, self.fp], [self.fn, self.tp]]

    @property
    def precision(self) -> Optional[float]:
        """``tp / (tp + fp)``; ``None`` when nothing is predicted positive."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> Optional[float]:
        """``tp / (tp + fn)``; ``None`` when there are no positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> Optional[float]:
        """Harmonic mean of precision and recall; ``None`` when either is undefined."""
        precision, recall = self.precision, self.recall
        if precision is None or recall is None:
            return None
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass
class ReliabilityBin:
    """One equal-width score bin ``[lower, upper)`` (the last bin includes 1.0)."""

    lower: float
    upper: float
    rows: int
    mean_score: Optional[float]  # None for an empty bin
    positive_rate: Optional[float]  # None for an empty bin


@dataclass
class RocCurve:
    """ROC curve points (lists of equal length, thresholds finite and decreasing)."""

    fpr: List[float]
    tpr: List[float]
    thresholds: List[float]


# --------------------------------------------------------------------------------------------- ranking
def _counts_at_thresholds(labels: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive counts at every distinct score taken as the threshold, highest first.

    A row is predicted positive when ``score >= threshold``. The counts are float64 cumulative sums over the
    rows sorted by score, read at the last row of each distinct score, as sklearn's ranking metrics count
    them, so that the areas below equal sklearn's to the last bit (tested).

    Returns:
        ``(fps, tps, thresholds)``, float64 arrays of the distinct scores' length.

    Raises:
        ValueError: no rows, labels and scores of different lengths, or a NaN or infinite score.
    """
    y = np.asarray(labels).reshape(-1)
    p = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or p.size == 0:
        raise ValueError(f"ranking metrics need as many labels as scores, at least one: got {y.size} and {p.size}")
    if not np.all(np.isfinite(p)):
        raise ValueError("ranking metrics need finite scores: found NaN or infinity")
    order = np.argsort(p, kind="stable")[::-1]  # the order within a tie does not change a count at its end
    p = p[order]
    ends = np.append(np.flatnonzero(np.diff(p)), p.size - 1)
    tps = np.cumsum((y[order] == 1).astype(np.float64))[ends]
    return 1 + ends.astype(np.float64) - tps, tps, p[ends]


def _roc_curve(labels: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve as sklearn's ``roc_curve(drop_intermediate=True)``: ``fpr``, ``tpr``, thresholds (first ``inf``).

    Points inside a straight segment are dropped; ``fpr`` (``tpr``) is NaN without negatives (positives).
    """
    fps, tps, thresholds = _counts_at_thresholds(labels, scores)
    if fps.shape[0] > 2:
        corners = np.concatenate(([True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]))
        fps, tps, thresholds = fps[corners], tps[corners], thresholds[corners]
    fps, tps = np.concatenate(([0.0], fps)), np.concatenate(([0.0], tps))
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.concatenate(([np.inf], thresholds))


def _precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As sklearn's ``precision_recall_curve``: precision and recall by rising threshold, then the point (0, 1).

    Recall is 1 at every threshold when there is no positive (sklearn warns there).
    """
    fps, tps, thresholds = _counts_at_thresholds(labels, scores)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1] if tps[-1] != 0 else np.ones_like(tps)
    return np.append(precision[::-1], 1.0), np.append(recall[::-1], 0.0), thresholds[::-1]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (sklearn's ``roc_auc_score``: trapezoids); NaN unless both classes are present."""
    if np.unique(np.asarray(labels)).size != 2:
        return float("nan")
    fpr, tpr, _ = _roc_curve(labels, scores)
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (sklearn's ``average_precision_score``: the step-wise area under the PR curve)."""
    precision, recall, _ = _precision_recall_curve(labels, scores)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
    """``roc_auc`` and ``pr_auc``; both classes must be present (see ``labels.require_both_classes``)."""
    return {"roc_auc": roc_auc(labels, scores), "pr_auc": pr_auc(labels, scores)}


# --------------------------------------------------------------------------------------------- probabilities
def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean binary cross-entropy with scores clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``.

    The clipping keeps a score of exactly 0 or 1 on the wrong class from making the loss infinite.
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def brier_score(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean squared difference between score and label.

    A constant predictor of the positive rate ``r`` scores ``r * (1 - r)``.
    """
    p = np.asarray(scores, dtype=np.float64)
    return float(np.mean((p - np.asarray(labels, dtype=np.float64)) ** 2))


def _bin_index(scores: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((np.asarray(scores, dtype=np.float64) * bins).astype(np.int64), bins - 1).clip(0)


def reliability_curve(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> List[ReliabilityBin]:
    """Per equal-width score bin: rows, mean score and observed positive rate (the reliability diagram)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    index = _bin_index(p, bins)
    rows = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=p, minlength=bins)
    label_sums = np.bincount(index, weights=y, minlength=bins)
    return [
        ReliabilityBin(
            lower=b / bins,
            upper=(b + 1) / bins,
            rows=int(rows[b]),
            mean_score=float(score_sums[b] / rows[b]) if rows[b] else None,
            positive_rate=float(label_sums[b] / rows[b]) if rows[b] else None,
        )
        for b in range(bins)
    ]


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the row-weighted mean of ``|mean score - positive rate|`` over equal-width score bins."""
    total = len(scores)
    if total == 0:
        raise ValueError("expected_calibration_error needs at least one row")
    # a bin has its mean score and positive rate exactly when it has rows; the empty bins weigh nothing
    return float(
        sum(
            b.rows * abs(b.mean_score - b.positive_rate)
            for b in reliability_curve(labels, scores, bins)
            if b.mean_score is not None and b.positive_rate is not None
        )
        / total
    )


def probability_metrics(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
    """``log_loss``, ``brier_score`` and ``ece`` (15 bins)."""
    return {
        "log_loss": log_loss(labels, scores),
        "brier_score": brier_score(labels, scores),
        "ece": expected_calibration_error(labels, scores),
    }


# --------------------------------------------------------------------------------------------- threshold
def confusion_counts(labels: np.ndarray, scores: np.ndarray, threshold: float) -> ConfusionCounts:
    """Counts with "predicted positive" meaning ``score >= threshold``."""
    predicted = np.asarray(scores) >= threshold
    actual = np.asarray(labels).astype(bool)
    return ConfusionCounts(
        tn=int(np.sum(~actual & ~predicted)),
        fp=int(np.sum(~actual & predicted)),
        fn=int(np.sum(actual & ~predicted)),
        tp=int(np.sum(actual & predicted)),
    )


def threshold_metrics(counts: ConfusionCounts) -> Dict[str, float]:
    """``precision``, ``recall`` and ``f1`` of the counts at a threshold.

    Undefined values are 0.0, as with sklearn's ``zero_division=0``.
    """
    return {
        "precision": float(counts.precision or 0.0),
        "recall": float(counts.recall or 0.0),
        "f1": float(counts.f1 or 0.0),
    }


def max_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (positive when ``score >= threshold``) that maximizes F1 on these rows."""
    precision, recall, thresholds = _precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(thresholds[int(np.argmax(f1))])


def split_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Dict[str, float]:
    """Every metric of this module on one split.

    Ranking, probability quality, and precision/recall/F1 at ``threshold``, which is recorded as
    ``decision_threshold``.
    """
    metrics = ranking_metrics(labels, scores)
    metrics.update(probability_metrics(labels, scores))
    metrics.update(threshold_metrics(confusion_counts(labels, scores, threshold)))
    metrics["decision_threshold"] = float(threshold)
    return metrics


# --------------------------------------------------------------------------------------------- curves
def downsample_indices(count: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``range(count)``, always keeping the first and last."""
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    if count <= max_points:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, max_points)).astype(np.int64))


def roc_points(labels: np.ndarray, scores: np.ndarray, max_points: int = MAX_ROC_POINTS) -> RocCurve:
    """The ROC curve of sklearn's ``roc_curve``, downsampled to at most ``max_points`` points (endpoints kept).

    sklearn's first threshold is ``inf`` (the point (0, 0)); thresholds are clipped to [0, 1] so that
    every value is finite and JSON/KFP-safe.
    """
    fpr, tpr, thresholds = _roc_curve(labels, scores)
    keep = downsample_indices(fpr.shape[0], max_points)
    clipped = np.clip(thresholds[keep], 0.0, 1.0)
    return RocCurve(
        fpr=[float(v) for v in fpr[keep]],
        tpr=[float(v) for v in tpr[keep]],
        thresholds=[float(v) for v in clipped],
    )


# --------------------------------------------------------------------------------------------- slices
MISSING_SLICE_VALUE = "(missing)"


@dataclass
class SliceMetrics:
    """Metrics of the rows whose slice column holds ``value`` (``None`` where undefined)."""

    value: str
    rows: int
    positives: int
    roc_auc: Optional[float]
    pr_auc: Optional[float]
    recall: Optional[float]
    precision: Optional[float]


def slice_key(value: Any) -> str:
    """String form of a slice value, the key that groups rows into slices.

    Missing values (None, NaN, pandas NA) become ``(missing)``; integral floats lose their ``.0``, so that a
    column read as float and as int slices alike.
    """
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return MISSING_SLICE_VALUE
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def slice_metrics(
    labels: np.ndarray, scores: np.ndarray, values: Sequence[Any], threshold: float
) -> List[SliceMetrics]:
    """Metrics per distinct value of ``values``, largest slices first (ties by value).

    ROC-AUC needs both classes in the slice and PR-AUC and recall need a positive; precision needs a
    predicted positive. Undefined values are ``None``.
    """
    keys = np.asarray([slice_key(v) for v in values], dtype=object)
    if keys.shape[0] != labels.shape[0]:
        raise ValueError(f"slice values have {keys.shape[0]} rows, labels {labels.shape[0]}")
    out = []
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        y, p = labels[mask], scores[mask]
        positives = int(y.sum())
        counts = confusion_counts(y, p, threshold)
        out.append(
            SliceMetrics(
                value=key,
                rows=int(y.shape[0]),
                positives=positives,
                roc_auc=roc_auc(y, p) if 0 < positives < y.shape[0] else None,
                pr_auc=pr_auc(y, p) if positives else None,
                recall=counts.recall,
                precision=counts.precision,
            )
        )
    out.sort(key=lambda s: (-s.rows, s.value))
    return out
