"""Label-free performance estimates from calibrated scores (kfp-free): the expected confusion matrix.

When the served score ``s`` is a calibrated probability, each row's label is a Bernoulli(``s``) draw, so at
the served threshold ``t`` (positive when ``s >= t``) the confusion matrix has the expectation

    E[TP] = sum of s over s >= t        E[FP] = sum of (1 - s) over s >= t
    E[FN] = sum of s over s <  t        E[TN] = sum of (1 - s) over s <  t

from the scores alone. The estimates are precision ``E[TP] / (E[TP] + E[FP])`` (exact: the predicted
positives are known), recall ``E[TP] / (E[TP] + E[FN])``, F1 ``2 E[TP] / (2 E[TP] + E[FP] + E[FN])`` and the
positive rate ``(E[TP] + E[FN]) / n`` -- the confidence-based estimate (CBPE) without a fitted calibrator,
because the served score is calibrated already (Platt, fitted on eval).

**Intervals.** The realized counts are Poisson-binomial: TP is a sum of independent Bernoulli(``s``) over
the predicted positives, FN over the rest. The interval is where the *realized* metric of these rows falls
if the scores are calibrated: a parametric bootstrap that redraws the realized TP and FN. For speed, a sum
whose variance ``sum s (1 - s)`` reaches :data:`NORMAL_VARIANCE` is drawn from its normal approximation (same
mean and variance; the central limit theorem holds to well under a percent there); a smaller one groups the
rows into narrow score bins (:data:`SCORE_BINS` over [0, 1]) and draws one binomial per bin (``n_bin`` rows
at the bin's mean score) instead of one Bernoulli per row, which within a bin of width 1/400 leaves the
variance within a fraction of a percent. Cost: at most ``resamples x bins`` draws, whatever the row count.

**What the estimate cannot see.** It assumes P(y | score) is what it was when the model was calibrated. It
holds under covariate shift of the inputs the score accounts for, and it is blind to concept drift: when
P(y | x) moves while the inputs (and so the scores) stay the same, the estimate does not move. Only labels
show that (the realized metrics and the calibration check of matured cohorts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

SCORE_BINS = 400
NORMAL_VARIANCE = 400.0  # above this variance of a redrawn sum, its normal approximation is drawn
ESTIMATED_METRICS = ("precision", "recall", "f1", "positive_rate")


@dataclass(frozen=True)
class ExpectedConfusion:
    """The expected confusion matrix of calibrated scores at a threshold.

    Attributes:
        tp: E[TP]. fp: E[FP]. fn: E[FN]. tn: E[TN].
        rows: Rows scored.
    """

    tp: float
    fp: float
    fn: float
    tn: float
    rows: int

    def metrics(self) -> Dict[str, Optional[float]]:
        """Estimated precision, recall, F1 and positive rate (``None`` where undefined)."""
        return _metrics(np.array([self.tp]), np.array([self.fp]), np.array([self.fn]), self.rows)


def expected_confusion(scores: np.ndarray, threshold: float) -> ExpectedConfusion:
    """E[TP], E[FP], E[FN], E[TN] of calibrated ``scores`` at ``threshold`` (positive when ``score >= threshold``)."""
    s = np.asarray(scores, dtype=np.float64)
    predicted = s >= threshold
    tp = float(s[predicted].sum())
    fn = float(s[~predicted].sum())
    positives = int(predicted.sum())
    return ExpectedConfusion(tp=tp, fp=positives - tp, fn=fn, tn=(s.size - positives) - fn, rows=int(s.size))


def _metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, rows: int) -> Dict[str, Optional[float]]:
    values = _metric_arrays(tp, fp, fn, rows)
    return {name: (float(v[0]) if np.isfinite(v[0]) else None) for name, v in values.items()}


def _metric_arrays(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, rows: int) -> Dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        positive_rate = (tp + fn) / rows if rows else np.full(tp.shape, np.nan)
    return {"precision": precision, "recall": recall, "f1": f1, "positive_rate": positive_rate}


def _bins(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per non-empty score bin (:data:`SCORE_BINS` over [0, 1]): rows and mean score."""
    index = np.minimum((scores * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
    rows = np.bincount(index, minlength=SCORE_BINS)
    sums = np.bincount(index, weights=scores, minlength=SCORE_BINS)
    used = rows > 0
    return rows[used], np.clip(sums[used] / rows[used], 0.0, 1.0)


def _redraw_sum(rng: np.random.Generator, scores: np.ndarray, resamples: int) -> np.ndarray:
    """``resamples`` draws of the sum of Bernoulli(``scores``): the realized positives among these rows."""
    variance = float(np.sum(scores * (1.0 - scores)))
    if variance >= NORMAL_VARIANCE:
        # the Poisson-binomial sum is normal to well under a percent of its spread here (Lyapunov CLT)
        return np.clip(rng.normal(float(scores.sum()), math.sqrt(variance), resamples), 0.0, float(scores.size))
    rows, mean = _bins(scores)
    return rng.binomial(rows[None, :], mean[None, :], size=(resamples, rows.size)).sum(axis=1).astype(np.float64)


def estimate(
    scores: np.ndarray,
    threshold: float,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Dict[str, Tuple[Optional[float], Optional[float], Optional[float]]]:
    """Estimated precision, recall, F1 and positive rate with the interval of the realized value.

    Args:
        scores: Calibrated positive-class probabilities of the rows.
        threshold: The served decision threshold.
        resamples: Label redraws of the parametric bootstrap.
        level: Confidence level of the percentile interval.
        seed: Seed of the redraws.

    Returns:
        ``{metric: (point, low, high)}`` for :data:`ESTIMATED_METRICS`; ``None`` where undefined (no rows,
        no predicted positive).
    """
    s = np.asarray(scores, dtype=np.float64)
    points = expected_confusion(s, threshold).metrics()
    if s.size == 0:
        return {name: (None, None, None) for name in ESTIMATED_METRICS}
    rng = np.random.default_rng(seed)
    above = s >= threshold
    predicted = float(above.sum())
    tp = _redraw_sum(rng, s[above], resamples)
    fn = _redraw_sum(rng, s[~above], resamples)
    arrays = _metric_arrays(tp, predicted - tp, fn, int(s.size))
    tail = (1.0 - level) / 2.0 * 100.0
    out: Dict[str, Tuple[Optional[float], Optional[float], Optional[float]]] = {}
    for name in ESTIMATED_METRICS:
        finite = arrays[name][np.isfinite(arrays[name])]
        if points[name] is None or finite.size == 0:
            out[name] = (points[name], None, None)
            continue
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        out[name] = (points[name], float(low), float(high))
    return out
