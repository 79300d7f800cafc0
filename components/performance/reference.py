"""The reference a cohort is judged against (kfp-free): the model card's metrics and their bands.

In order of preference:

1. **The card's intervals**: ``card.intervals["test"][metric] = {"point", "low", "high", "level",
   "resamples"}`` (evaluate's stratified bootstrap on the test split) -- the band is ``[low, high]``.
2. **The card's point values** (``metrics["test"]``, else ``metrics["eval"]``, the split train measured) with
   a band computed here, honestly but approximately: ``point +- z * se`` at the run's level, with the normal
   approximation of the metric's sampling error on ``n`` rows of label rate ``pi`` (the split's lineage in the
   card; the test split's size is taken as the eval split's, which ingest draws with the same fraction, when
   the card records only eval):

   | metric | se |
   |---|---|
   | recall | ``sqrt(r (1 - r) / P)``, ``P = n pi`` positives |
   | precision | ``sqrt(p (1 - p) / Q)``, ``Q = P r / p`` predicted positives |
   | F1 | ``sqrt(f (1 - f) / ((P + Q) / 2))`` |
   | PR-AUC | ``sqrt(a (1 - a) / P)`` (average precision as a mean over the positives) |
   | ROC-AUC | Hanley and McNeil (1982) with ``P`` positives and ``n - P`` negatives |

   Brier score and ECE are shown with their point only (they are not judged: both move with the traffic's
   prevalence even when the model is as good as ever).
3. **Point only** when the card records no rows for the split: the band has no width, and the verdict then
   rests on the cohort's own interval alone (say so in the report).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from kfpkit.components.performance.errors import PerformanceError
from kfpkit.core.performance_summary import Reference, ReferenceMetric

# metrics a cohort is judged on: higher is better for each of them
JUDGED_METRICS = ("pr_auc", "roc_auc", "precision", "recall", "f1")
SHOWN_METRICS = (*JUDGED_METRICS, "brier_score", "ece")
CARD_INTERVAL = "card interval"
NORMAL_APPROXIMATION = "normal approximation"
POINT_ONLY = "point only"


def read_card(model_uri: str) -> Any:
    """The model card of a model version (local folder or registry URI; only ``model_card.json`` is read).

    Raises:
        PerformanceError: the card is missing or invalid.
    """
    from kfpkit.core.model_card import MODEL_CARD_FILE, ModelCard, ModelCardError, read_model_card

    try:
        if "://" not in model_uri:  # a local folder: no fsspec (its import: ~50 ms)
            return read_model_card(os.path.abspath(model_uri))
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(model_uri)
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(fs, LocalFileSystem):
            return read_model_card(os.path.abspath(path))
        card_path = f"{path.rstrip('/')}/{MODEL_CARD_FILE}"
        document = json.loads(fs.cat_file(card_path))
        return ModelCard.from_dict(document, where=f"{model_uri}/{MODEL_CARD_FILE}")
    except (ModelCardError, OSError, ValueError, ImportError) as exc:
        raise PerformanceError(f"model {model_uri!r}: cannot read the model card: {exc}") from None


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)


def standard_error(metric: str, values: Mapping[str, float], rows: int, label_rate: float) -> Optional[float]:
    """The normal-approximation standard error of ``metric`` on ``rows`` rows (see the module docstring)."""
    positives = rows * label_rate
    negatives = rows - positives
    value = values.get(metric)
    if value is None or positives <= 0 or negatives <= 0:
        return None
    recall, precision = values.get("recall"), values.get("precision")
    predicted = positives * recall / precision if recall and precision else None
    if metric in ("recall", "pr_auc"):
        return math.sqrt(value * (1 - value) / positives)
    if metric == "precision":
        return math.sqrt(value * (1 - value) / predicted) if predicted else None
    if metric == "f1":
        return math.sqrt(value * (1 - value) / ((positives + predicted) / 2)) if predicted else None
    if metric == "roc_auc":
        q1, q2 = value / (2 - value), 2 * value * value / (1 + value)
        variance = value * (1 - value) + (positives - 1) * (q1 - value**2) + (negatives - 1) * (q2 - value**2)
        return math.sqrt(max(variance, 0.0) / (positives * negatives))
    return None


def _lineage(card: Any, split: str) -> Tuple[Optional[int], Optional[float]]:
    splits = card.data.splits
    lineage = splits.get(split) or splits.get("eval")
    return (lineage.rows, lineage.label_rate) if lineage is not None else (None, None)


def reference_from_card(card: Any, level: float) -> Reference:
    """The reference of a model card (see the module docstring for the order of preference).

    Args:
        card: A :class:`kfpkit.core.model_card.ModelCard`.
        level: Confidence level of a band computed here.

    Raises:
        PerformanceError: the card has no metric this monitor judges on.
    """
    intervals = (getattr(card, "intervals", None) or {}).get("test") or {}
    metrics: Dict[str, ReferenceMetric]
    if intervals:
        metrics = {
            name: ReferenceMetric(float(i["point"]), float(i["low"]), float(i["high"]), CARD_INTERVAL)
            for name, i in intervals.items()
            if name in SHOWN_METRICS and _complete(i)
        }
        for name, value in (card.metrics.get("test") or {}).items():
            if name in SHOWN_METRICS and name not in metrics and _finite(value):
                metrics[name] = ReferenceMetric(float(value), float(value), float(value), POINT_ONLY)
        rows, _ = _lineage(card, "test")
        return Reference(split="test", rows=rows, metrics=metrics)
    split = "test" if card.metrics.get("test") else "eval"
    values = {k: float(v) for k, v in (card.metrics.get(split) or {}).items() if _finite(v)}
    if not any(name in values for name in JUDGED_METRICS):
        raise PerformanceError(
            f"the model card has no {' / '.join(JUDGED_METRICS)} under metrics['test'] or metrics['eval']"
        )
    rows, label_rate = _lineage(card, split)
    z = _z(level)
    metrics = {}
    for name in SHOWN_METRICS:
        if name not in values:
            continue
        se = standard_error(name, values, rows, label_rate) if rows and label_rate is not None else None
        if name in JUDGED_METRICS and se is not None:
            point = values[name]
            metrics[name] = ReferenceMetric(
                point, max(0.0, point - z * se), min(1.0, point + z * se), NORMAL_APPROXIMATION
            )
        else:
            metrics[name] = ReferenceMetric(values[name], values[name], values[name], POINT_ONLY)
    return Reference(split=split, rows=rows, metrics=metrics)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _complete(interval: Any) -> bool:
    return isinstance(interval, Mapping) and all(_finite(interval.get(k)) for k in ("point", "low", "high"))
