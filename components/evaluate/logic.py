"""Evaluation of a model directory on the eval split, and the blessing gate (kfp-free).

:func:`evaluate_model` scores the eval split with a model directory written by train (TorchScript or the
sklearn baseline, through :func:`kfpkit.components.common.model_dir.load_model` and the shared
preprocessing), computes ranking metrics (ROC-AUC, PR-AUC as average precision, log loss, Brier score) and
metrics at the model's decision threshold (precision, recall, F1, confusion matrix), an ROC curve of at
most :data:`MAX_ROC_POINTS` points, optional per-slice metrics, and decides whether the model is
*blessed*:

* **floor**: the candidate's PR-AUC must be at least ``min_pr_auc``;
* **no regression**: when a baseline model is given (the registry's latest blessed version), it is scored
  on the same rows and the candidate must satisfy ``candidate_pr_auc >= baseline_pr_auc - max_regression``
  (an absolute PR-AUC drop of at most ``max_regression``).

A baseline that cannot be fetched, loaded (e.g. its manifest check fails) or scored does not stop the
evaluation: the reason is recorded and the candidate is checked against the floor only.

:func:`run_evaluation` adds the registry lookup (``latest_blessed`` + ``materialize``) in front of
:func:`evaluate_model`; the KFP component calls it.

Threshold rule: metrics "at the threshold" use the model card's ``decision_threshold``, which train sets
to the threshold that maximizes F1 on the eval split; a row is predicted positive when its score is
``>=`` the threshold (the convention of ``sklearn.metrics.precision_recall_curve``).

The pure metric functions (:func:`ranking_metrics`, :func:`confusion_counts`, :func:`roc_points`,
:func:`slice_metrics`, :func:`blessing_decision`, :func:`render_report`) take numpy arrays and plain
values so that they can be tested on their own. sklearn, pandas and the model loaders are imported
inside functions.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# PR-AUC (average precision) of a model that ranks at random equals the positive rate: ~0.02 for fraud
# data with ~2% positives. A floor of 0.2 is ten times that: it rejects models that are broken or barely
# better than chance (wrong features, inverted labels, collapsed training) without rejecting a useful
# first model. Set it per use case; it is an absolute sanity floor, the baseline comparison guards against
# regressions.
DEFAULT_MIN_PR_AUC = 0.2
DEFAULT_MAX_REGRESSION = 0.01
MAX_ROC_POINTS = 200
CONFUSION_MATRIX_CATEGORIES: Tuple[str, str] = ("0", "1")
MISSING_SLICE_VALUE = "(missing)"
NOT_AVAILABLE = "n/a"
MAX_REPORT_SLICES = 50
THRESHOLD_RULE = (
    "the model card's `decision_threshold`, which train sets to the threshold that maximizes F1 on the eval "
    "split; a row is predicted positive when its score is >= the threshold"
)
# float noise allowance in the gate comparisons (a model compared with itself must pass)
_GATE_TOLERANCE = 1e-12

# Keys of EvaluationResult.metrics, in report order, with their display names.
METRIC_NAMES: Dict[str, str] = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (average precision)",
    "log_loss": "log loss",
    "brier_score": "Brier score",
    "precision": "precision @ threshold",
    "recall": "recall @ threshold",
    "f1": "F1 @ threshold",
    "decision_threshold": "decision threshold",
}


class EvaluationError(ValueError):
    """Bad evaluation input: a missing file or column, labels that are not 0/1, invalid gate settings."""


# --------------------------------------------------------------------------------------------- results
@dataclass
class RocCurve:
    """ROC curve points (lists of equal length, thresholds finite and decreasing)."""

    fpr: List[float]
    tpr: List[float]
    thresholds: List[float]


@dataclass
class ConfusionCounts:
    """Counts at a threshold: rows are the actual class, columns the predicted class."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def matrix(self) -> List[List[int]]:
        """``[[tn, fp], [fn, tp]]`` in the order of :data:`CONFUSION_MATRIX_CATEGORIES`."""
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
class SliceMetrics:
    """Metrics of the rows whose slice column holds ``value`` (``None`` where undefined)."""

    value: str
    rows: int
    positives: int
    roc_auc: Optional[float]
    pr_auc: Optional[float]
    recall: Optional[float]
    precision: Optional[float]


@dataclass
class EvaluationResult:
    """Everything evaluate produces; ``report_markdown`` renders the rest for people."""

    metrics: Dict[str, float]
    threshold: float
    threshold_source: str
    confusion_matrix: List[List[int]]
    roc: RocCurve
    slices: List[SliceMetrics]
    slice_column: Optional[str]
    baseline_metrics: Optional[Dict[str, float]]
    baseline_label: Optional[str]
    blessed: bool
    reasons: List[str]
    min_pr_auc: float
    max_regression: float
    eval_rows: int
    eval_positives: int
    framework: str = ""
    report_markdown: str = ""

    def metrics_to_log(self) -> Dict[str, float]:
        """Scalar metrics for the KFP ``Metrics`` artifact: the candidate's metrics, eval counts,
        ``baseline_pr_auc`` (when a baseline was scored) and ``blessed`` as 1.0/0.0."""
        out = {key: float(value) for key, value in self.metrics.items()}
        out["eval_rows"] = float(self.eval_rows)
        out["eval_positives"] = float(self.eval_positives)
        if self.baseline_metrics is not None:
            out["baseline_pr_auc"] = float(self.baseline_metrics["pr_auc"])
            out["baseline_roc_auc"] = float(self.baseline_metrics["roc_auc"])
        out["blessed"] = 1.0 if self.blessed else 0.0
        return out


# --------------------------------------------------------------------------------------------- pure metrics
def check_gate_settings(min_pr_auc: float, max_regression: float) -> None:
    """Raises EvaluationError unless ``0 <= min_pr_auc <= 1`` and ``0 <= max_regression <= 1``."""
    if not (isinstance(min_pr_auc, (int, float)) and math.isfinite(min_pr_auc) and 0.0 <= min_pr_auc <= 1.0):
        raise EvaluationError(f"min_pr_auc must be a number in [0, 1], got {min_pr_auc!r}")
    if not (isinstance(max_regression, (int, float)) and math.isfinite(max_regression) and 0 <= max_regression <= 1):
        raise EvaluationError(f"max_regression must be a number in [0, 1], got {max_regression!r}")


def binary_labels(values: Any, column: str) -> np.ndarray:
    """Validates a label column and returns it as int64 0/1.

    Raises:
        EvaluationError: the column is empty, has missing values, or holds values other than 0/1.
    """
    array = np.asarray(values)
    if array.size == 0:
        raise EvaluationError(f"label column {column!r} has no rows")
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise EvaluationError(f"label column {column!r} must hold 0/1 values, found dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise EvaluationError(f"label column {column!r} has missing values")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        raise EvaluationError(
            f"label column {column!r} must hold only 0/1, found {sorted(set(array[bad].tolist()))[:5]}"
        )
    return array.astype(np.int64)


def checked_scores(scores: Any, rows: int, what: str) -> np.ndarray:
    """Returns scores as float64 ``[rows]`` after checking they are finite probabilities.

    Raises:
        EvaluationError: wrong length, a NaN/inf score, or a score outside [0, 1].
    """
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.shape[0] != rows:
        raise EvaluationError(f"{what} returned {array.shape[0]} scores for {rows} rows")
    if not np.all(np.isfinite(array)):
        raise EvaluationError(f"{what} returned {int((~np.isfinite(array)).sum())} non-finite score(s)")
    if array.min() < 0.0 or array.max() > 1.0:
        raise EvaluationError(f"{what} returned scores outside [0, 1] ({array.min()} .. {array.max()})")
    return array


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
    """Threshold-free metrics: ``roc_auc``, ``pr_auc`` (average precision), ``log_loss``, ``brier_score``.

    Raises:
        EvaluationError: the labels hold only one class (ROC-AUC and PR-AUC are undefined).
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    positives = int(labels.sum())
    if positives == 0 or positives == labels.shape[0]:
        only = "positives" if positives else "negatives"
        raise EvaluationError(
            f"the eval data holds only {only} ({labels.shape[0]} rows); ROC-AUC and PR-AUC need both classes"
        )
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "log_loss": float(log_loss(labels, scores, labels=[0, 1])),
        "brier_score": float(brier_score_loss(labels, scores)),
    }


def confusion_counts(labels: np.ndarray, scores: np.ndarray, threshold: float) -> ConfusionCounts:
    """Counts with "predicted positive" meaning ``score >= threshold``."""
    predicted = scores >= threshold
    actual = labels.astype(bool)
    return ConfusionCounts(
        tn=int(np.sum(~actual & ~predicted)),
        fp=int(np.sum(~actual & predicted)),
        fn=int(np.sum(actual & ~predicted)),
        tp=int(np.sum(actual & predicted)),
    )


def threshold_metrics(counts: ConfusionCounts) -> Dict[str, float]:
    """``precision``, ``recall``, ``f1`` at a threshold; undefined values are 0.0 (sklearn's
    ``zero_division=0``)."""
    return {
        "precision": float(counts.precision or 0.0),
        "recall": float(counts.recall or 0.0),
        "f1": float(counts.f1 or 0.0),
    }


def downsample_indices(count: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``range(count)``, always keeping the first and last."""
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    if count <= max_points:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, max_points)).astype(np.int64))


def roc_points(labels: np.ndarray, scores: np.ndarray, max_points: int = MAX_ROC_POINTS) -> RocCurve:
    """sklearn's ROC curve, downsampled to at most ``max_points`` points (endpoints kept).

    sklearn's first threshold is ``inf`` (the point (0, 0)); thresholds are clipped to [0, 1] so that
    every value is finite and JSON/KFP-safe.
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=True)
    keep = downsample_indices(fpr.shape[0], max_points)
    clipped = np.clip(thresholds[keep], 0.0, 1.0)
    return RocCurve(
        fpr=[float(v) for v in fpr[keep]],
        tpr=[float(v) for v in tpr[keep]],
        thresholds=[float(v) for v in clipped],
    )


def slice_key(value: Any) -> str:
    """String form of a slice value: missing values (None, NaN, pandas NA) become ``(missing)``,
    integral floats lose their ``.0``."""
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
    predicted positive. Undefined values are ``None`` (shown as "n/a").
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    keys = np.asarray([slice_key(v) for v in values], dtype=object)
    if keys.shape[0] != labels.shape[0]:
        raise EvaluationError(f"slice values have {keys.shape[0]} rows, labels {labels.shape[0]}")
    out = []
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        y, p = labels[mask], scores[mask]
        positives = int(y.sum())
        both = 0 < positives < y.shape[0]
        counts = confusion_counts(y, p, threshold)
        out.append(
            SliceMetrics(
                value=key,
                rows=int(y.shape[0]),
                positives=positives,
                roc_auc=float(roc_auc_score(y, p)) if both else None,
                pr_auc=float(average_precision_score(y, p)) if positives else None,
                recall=counts.recall,
                precision=counts.precision,
            )
        )
    out.sort(key=lambda s: (-s.rows, s.value))
    return out


def blessing_decision(
    candidate_pr_auc: float,
    min_pr_auc: float,
    max_regression: float,
    baseline_pr_auc: Optional[float] = None,
    baseline_label: str = "baseline",
) -> Tuple[bool, List[str]]:
    """The gate: floor AND (when a baseline PR-AUC is given) no absolute drop beyond ``max_regression``.

    Returns:
        ``(blessed, reasons)``: one human-readable reason per check, prefixed ``pass:`` or ``fail:``.
    """
    reasons = []
    floor_ok = candidate_pr_auc >= min_pr_auc - _GATE_TOLERANCE
    reasons.append(
        f"{'pass' if floor_ok else 'fail'}: PR-AUC {candidate_pr_auc:.4f} {'≥' if floor_ok else '<'} "
        f"floor {min_pr_auc:.4f}"
    )
    blessed = floor_ok
    if baseline_pr_auc is not None:
        drop = baseline_pr_auc - candidate_pr_auc
        regression_ok = drop <= max_regression + _GATE_TOLERANCE
        if drop <= 0:
            detail = f"no drop (gain {-drop:.4f})"
        else:
            detail = f"drop {drop:.4f} {'≤' if regression_ok else '>'} allowed {max_regression:.4f}"
        reasons.append(
            f"{'pass' if regression_ok else 'fail'}: PR-AUC {candidate_pr_auc:.4f} vs {baseline_label} "
            f"{baseline_pr_auc:.4f}: {detail}"
        )
        blessed = blessed and regression_ok
    return blessed, reasons


# --------------------------------------------------------------------------------------------- report
def _fmt(value: Optional[float], digits: int = 4) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_report(result: EvaluationResult) -> str:
    """The Markdown report: verdict, gate reasons, metrics (vs the baseline), threshold rule, confusion
    matrix and the slice table."""
    lines = ["# Model evaluation", ""]
    lines.append(f"**Verdict: {'BLESSED' if result.blessed else 'NOT BLESSED'}**")
    lines += ["", "## Blessing gate", ""]
    lines += [f"- {_cell(reason)}" for reason in result.reasons]
    lines += [
        "",
        f"Rule: blessed when PR-AUC ≥ `min_pr_auc` ({result.min_pr_auc:.4f}) and, when a baseline (the "
        f"registry's latest blessed version) was scored on the same rows, PR-AUC ≥ baseline PR-AUC - "
        f"`max_regression` ({result.max_regression:.4f}).",
        "",
        "## Metrics on the eval split",
        "",
        f"Rows: {result.eval_rows}, positives: {result.eval_positives} "
        f"({result.eval_positives / result.eval_rows:.2%}). Model framework: {result.framework or NOT_AVAILABLE}.",
        "",
    ]
    if result.baseline_metrics is not None:
        lines += [f"| metric | candidate | {_cell(result.baseline_label)} |", "|---|---|---|"]
        for key, name in METRIC_NAMES.items():
            lines.append(f"| {name} | {_fmt(result.metrics[key])} | {_fmt(result.baseline_metrics.get(key))} |")
    else:
        lines += ["| metric | candidate |", "|---|---|"]
        for key, name in METRIC_NAMES.items():
            lines.append(f"| {name} | {_fmt(result.metrics[key])} |")
    lines += [
        "",
        "## Decision threshold",
        "",
        f"Threshold {result.threshold:.4f} ({result.threshold_source}). Rule: {THRESHOLD_RULE}. Because the "
        "threshold was chosen on these rows, precision, recall and F1 at the threshold are optimistic.",
        "",
        f"### Confusion matrix at {result.threshold:.4f}",
        "",
        "| actual \\ predicted | 0 | 1 |",
        "|---|---|---|",
        f"| 0 | {result.confusion_matrix[0][0]} | {result.confusion_matrix[0][1]} |",
        f"| 1 | {result.confusion_matrix[1][0]} | {result.confusion_matrix[1][1]} |",
    ]
    if result.slice_column is not None:
        column = _cell(result.slice_column)
        lines += [
            "",
            f"## Slices by `{column}`",
            "",
            f"| {column} | rows | positives | ROC-AUC | PR-AUC | recall @ threshold | precision @ threshold |",
            "|---|---|---|---|---|---|---|",
        ]
        for item in result.slices[:MAX_REPORT_SLICES]:
            lines.append(
                f"| {_cell(item.value)} | {item.rows} | {item.positives} | {_fmt(item.roc_auc)} | "
                f"{_fmt(item.pr_auc)} | {_fmt(item.recall)} | {_fmt(item.precision)} |"
            )
        if len(result.slices) > MAX_REPORT_SLICES:
            lines += ["", f"{len(result.slices) - MAX_REPORT_SLICES} smaller slice(s) not shown."]
        lines += ["", "ROC-AUC is n/a where a slice holds one class only; PR-AUC and recall where it has no positives."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- evaluation
def _all_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Tuple[Dict[str, float], ConfusionCounts]:
    counts = confusion_counts(labels, scores, threshold)
    metrics = ranking_metrics(labels, scores)
    metrics.update(threshold_metrics(counts))
    metrics["decision_threshold"] = float(threshold)
    return metrics, counts


def _read_eval_frame(eval_path: str, label_column: str, slice_column: Optional[str]) -> Any:
    from kfpkit.components.common.datasets import read_split_frame

    frame = read_split_frame(
        eval_path, "eval data", error=EvaluationError, required=[("label", label_column), ("slice", slice_column)]
    )
    if frame[label_column].isna().any():
        raise EvaluationError(f"eval data {eval_path}: label column {label_column!r} has missing values")
    return frame


def _decision_threshold(card: Dict[str, Any]) -> Tuple[float, str]:
    from kfpkit.components.common.model_dir import DEFAULT_DECISION_THRESHOLD

    value = card.get("decision_threshold")
    if value is None:
        return DEFAULT_DECISION_THRESHOLD, f"model card has no decision_threshold: default {DEFAULT_DECISION_THRESHOLD}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise EvaluationError(f"model card decision_threshold must be a number in [0, 1], got {value!r}")
    return float(value), "from the model card"


def _score_baseline(
    baseline_dir: str, label: str, expected_content_sha256: Optional[str], frame: Any, labels: np.ndarray
) -> Dict[str, float]:
    from kfpkit.components.common.model_dir import MANIFEST_FILE, ModelDirError, load_model

    baseline = load_model(baseline_dir, verify=True)
    if expected_content_sha256:
        with open(os.path.join(baseline_dir, MANIFEST_FILE), encoding="utf-8") as fh:
            found = json.load(fh).get("content_sha256")
        if found != expected_content_sha256:
            raise ModelDirError(
                f"{baseline_dir}: manifest content_sha256 {found} differs from the registry pointer's "
                f"{expected_content_sha256}"
            )
    scores = checked_scores(baseline.predict_proba(frame), labels.shape[0], label)
    threshold, _ = _decision_threshold(baseline.card)
    metrics, _ = _all_metrics(labels, scores, threshold)
    return metrics


def evaluate_model(
    model_dir: str,
    eval_path: str,
    label_column: str,
    *,
    min_pr_auc: float = DEFAULT_MIN_PR_AUC,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    slice_column: Optional[str] = None,
    baseline_dir: Optional[str] = None,
    baseline_label: Optional[str] = None,
    baseline_content_sha256: Optional[str] = None,
    notes: Sequence[str] = (),
) -> EvaluationResult:
    """Evaluates a model directory on the eval split and applies the blessing gate.

    Args:
        model_dir: Local model directory written by train (no manifest needed).
        eval_path: The eval split: one Parquet file with the raw features and the label.
        label_column: Name of the 0/1 label column in the eval data.
        min_pr_auc: PR-AUC floor of the gate.
        max_regression: Largest allowed absolute PR-AUC drop against the baseline.
        slice_column: Column of the eval data to report metrics per value of; ``None``: no slices.
        baseline_dir: Local model directory of the baseline (with ``MANIFEST.json``; it is verified).
            ``None``: only the floor is checked.
        baseline_label: Name of the baseline in reasons and the report (e.g. ``"baseline fraud-detector v3"``).
        baseline_content_sha256: When given, the baseline manifest's ``content_sha256`` must equal it.
        notes: Reasons recorded before evaluation (e.g. why there is no baseline); listed after the gate's
            own reasons.

    Returns:
        The metrics, curves, slices, baseline metrics, decision, reasons and Markdown report.

    Raises:
        EvaluationError: bad gate settings, eval file/label/slice column problems, a single-class eval
            split, invalid scores or a model card whose label column differs from ``label_column``.
        kfpkit.components.common.model_dir.ModelDirError: the candidate model directory is incomplete.
    """
    from kfpkit.components.common.model_dir import load_model
    from kfpkit.components.common.preprocessing import PreprocessingError

    check_gate_settings(min_pr_auc, max_regression)
    frame = _read_eval_frame(eval_path, label_column, slice_column)
    labels = binary_labels(frame[label_column].to_numpy(), label_column)
    model = load_model(model_dir)
    card_label = model.card.get("label_column")
    if card_label is not None and card_label != label_column:
        raise EvaluationError(
            f"model {model_dir} was trained on label column {card_label!r} but label_column is {label_column!r}"
        )
    threshold, threshold_source = _decision_threshold(model.card)
    try:
        raw_scores = model.predict_proba(frame)
    except PreprocessingError as exc:
        raise EvaluationError(f"eval data {eval_path} does not fit model {model_dir}: {exc}") from exc
    scores = checked_scores(raw_scores, labels.shape[0], f"model {model_dir}")
    metrics, counts = _all_metrics(labels, scores, threshold)

    reasons = list(notes)
    baseline_metrics: Optional[Dict[str, float]] = None
    label = baseline_label or "baseline"
    if baseline_dir is not None:
        try:
            baseline_metrics = _score_baseline(baseline_dir, label, baseline_content_sha256, frame, labels)
        except Exception as exc:  # a broken baseline must not stop the gate; record why and go on
            reasons.append(
                f"warning: {label} could not be evaluated ({type(exc).__name__}: {exc}); "
                "only the PR-AUC floor was checked"
            )
    elif not notes:
        reasons.append("note: no baseline model given; only the PR-AUC floor was checked")
    blessed, gate_reasons = blessing_decision(
        metrics["pr_auc"],
        min_pr_auc,
        max_regression,
        baseline_pr_auc=None if baseline_metrics is None else baseline_metrics["pr_auc"],
        baseline_label=label,
    )
    reasons = gate_reasons + reasons
    result = EvaluationResult(
        metrics=metrics,
        threshold=threshold,
        threshold_source=threshold_source,
        confusion_matrix=counts.matrix,
        roc=roc_points(labels, scores),
        slices=[] if slice_column is None else slice_metrics(labels, scores, frame[slice_column].tolist(), threshold),
        slice_column=slice_column,
        baseline_metrics=baseline_metrics,
        baseline_label=label if baseline_metrics is not None else None,
        blessed=blessed,
        reasons=reasons,
        min_pr_auc=float(min_pr_auc),
        max_regression=float(max_regression),
        eval_rows=int(labels.shape[0]),
        eval_positives=int(labels.sum()),
        framework=model.framework,
    )
    result.report_markdown = render_report(result)
    return result


def run_evaluation(
    model_dir: str,
    eval_path: str,
    label_column: str,
    *,
    min_pr_auc: float = DEFAULT_MIN_PR_AUC,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    slice_column: Optional[str] = None,
    baseline_registry_root: Optional[str] = None,
    model_name: Optional[str] = None,
) -> EvaluationResult:
    """Looks up the baseline in the registry, then :func:`evaluate_model`.

    With ``baseline_registry_root`` and ``model_name`` set, the registry's latest blessed version of
    ``model_name`` (``registry.latest_blessed``) is materialized into a temporary directory (removed
    afterwards) and used as the baseline. No blessed version yet (first run), or a lookup/fetch failure,
    is recorded as a reason and the candidate is checked against the floor only.

    Raises:
        EvaluationError: only one of ``baseline_registry_root`` and ``model_name`` is set, or any error of
            :func:`evaluate_model`.
    """
    if (baseline_registry_root is None) != (model_name is None):
        missing = "model_name" if model_name is None else "baseline_registry_root"
        raise EvaluationError(
            f"baseline_registry_root and model_name go together: {missing} is not set "
            "(set both to compare with the registry's latest blessed model, or neither)"
        )
    common = dict(
        model_dir=model_dir,
        eval_path=eval_path,
        label_column=label_column,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        slice_column=slice_column,
    )
    if baseline_registry_root is None:
        return evaluate_model(
            **common,
            notes=[
                "note: no baseline registry configured (baseline_registry_root/model_name not set); "
                "only the PR-AUC floor was checked"
            ],
        )
    from kfpkit.components.common import registry

    registry.validate_model_name(model_name)  # a bad name is a configuration error, not a missing baseline
    where = f"registry {baseline_registry_root}"
    notes: List[str] = []
    baseline_dir: Optional[str] = None
    baseline_label: Optional[str] = None
    content_sha256: Optional[str] = None
    workdir = tempfile.mkdtemp(prefix="kfpkit-evaluate-baseline-")
    try:
        try:
            entry = registry.latest_blessed(baseline_registry_root, model_name)
        except Exception as exc:
            entry = None
            notes.append(
                f"warning: looking up the latest blessed {model_name!r} in {where} failed "
                f"({type(exc).__name__}: {exc}); only the PR-AUC floor was checked"
            )
        else:
            if entry is None:
                notes.append(
                    f"note: {where} has no blessed version of {model_name!r} yet (first run): no baseline, "
                    "only the PR-AUC floor was checked"
                )
        if entry is not None:
            baseline_label = f"baseline {model_name} v{entry.version}"
            try:
                baseline_dir = registry.materialize(entry.uri, os.path.join(workdir, "baseline"))
                content_sha256 = entry.content_sha256
            except Exception as exc:
                notes.append(
                    f"warning: {baseline_label} could not be fetched from {entry.uri} "
                    f"({type(exc).__name__}: {exc}); only the PR-AUC floor was checked"
                )
        return evaluate_model(
            **common,
            baseline_dir=baseline_dir,
            baseline_label=baseline_label,
            baseline_content_sha256=content_sha256,
            notes=notes,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
