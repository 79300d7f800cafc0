"""Fitting the calibration of train: Platt scaling on the eval split.

Why Platt: on the 100k-row synthetic sample (0.7/0.15/0.15 split, test-split figures, median of 3 seeds),
Platt scaling fitted on eval brought both frameworks to Brier ~0.0175 and ECE (15 bins) below 0.004 with
PR-AUC and ROC-AUC unchanged (it is monotonic). Isotonic regression reached a similar ECE but cost 0.01-0.02
PR-AUC: its step function ties the scores of whole ranges of rows.

The fitted :class:`~kfpkit.core.model_dir.PlattCalibration` is stored as ``calibration.json``
and applied by ``LoadedModel.predict_proba_arrays``, the code evaluate, infra_validate and serving share.
"""

from __future__ import annotations

import logging

import numpy as np

from kfpkit.core.model_dir import CALIBRATION_EPS, PlattCalibration

logger = logging.getLogger("kfpkit.train")


def fit_platt(labels: np.ndarray, probabilities: np.ndarray) -> PlattCalibration:
    """Fits ``sigmoid(slope * logit(p) + intercept)`` to the eval labels by maximum likelihood.

    Uses sklearn's unregularized logistic regression on the logit of the (clipped) probabilities. When the
    fitted slope is not positive -- the model ranks eval rows no better than chance, e.g. a barely trained
    model on a few hundred rows -- a positive slope cannot be had: the slope is fixed at 1 and only the
    intercept is fitted (the mean calibrated probability then equals the eval positive rate), with a
    warning. The ranking is kept either way; evaluate's PR-AUC floor judges such a model.
    """
    from sklearn.linear_model import LogisticRegression

    p = np.clip(np.asarray(probabilities, dtype=np.float64), CALIBRATION_EPS, 1.0 - CALIBRATION_EPS)
    logits = np.log(p) - np.log1p(-p)
    y = np.asarray(labels, dtype=np.float64)
    regression = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000).fit(logits.reshape(-1, 1), y)
    slope, intercept = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    if slope > 0:
        return PlattCalibration(slope=slope, intercept=intercept, fitted_on="eval")
    logger.warning(
        "calibration on eval found slope %.4g <= 0 (the model ranks eval no better than chance); fitting the "
        "intercept only, with slope 1",
        slope,
    )
    return PlattCalibration(slope=1.0, intercept=_offset_intercept(logits, y), fitted_on="eval")


def _offset_intercept(logits: np.ndarray, labels: np.ndarray) -> float:
    """The maximum-likelihood ``b`` of ``sigmoid(logit + b)`` (Newton's method on a convex 1-D problem)."""
    b = 0.0
    for _ in range(100):
        q = 0.5 * (1.0 + np.tanh(0.5 * (logits + b)))
        curvature = float(np.sum(q * (1.0 - q)))
        if curvature <= 0.0:
            break
        step = float(np.sum(q - labels)) / curvature
        b -= step
        if abs(step) < 1e-12:
            break
    return b
