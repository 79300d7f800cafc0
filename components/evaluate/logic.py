"""Evaluation of a model directory on the test split, and the blessing gate (kfp-free orchestration).

:func:`evaluate_model` scores the **test split** with a model directory written by train (through
:func:`kfpkit.core.model_dir.load_model`: the shared preprocessing, the model and its
calibration, exactly what serving returns), computes the metrics of :mod:`kfpkit.core.classification_metrics`
(ROC-AUC, PR-AUC, log loss, Brier score, ECE and its reliability curve, precision/recall/F1 and the
confusion matrix at the model card's ``decision_threshold``, an ROC curve, optional per-slice metrics),
scores the baseline (the registry's latest blessed version) on the same rows when given, and applies the
gate of :mod:`kfpkit.components.evaluate.gate`; :mod:`kfpkit.components.evaluate.report` renders the
Markdown report. Train never reads the test split, so nothing here judges a model on the rows that
chose it.

A baseline that cannot be fetched, loaded (e.g. its manifest check fails) or scored does not stop the
evaluation: the reason is recorded and the regression check is skipped.

:func:`run_evaluation` adds the registry lookup (``latest_blessed`` + ``materialize``) in front of
:func:`evaluate_model`; the KFP component calls it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kfpkit.components.evaluate.errors import EvaluationError
from kfpkit.components.evaluate.gate import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MIN_PR_AUC,
    DEFAULT_MIN_PR_AUC_LIFT,
    GateDecision,
    GateEvidence,
    GateSettings,
    blessing_decision,
)
from kfpkit.components.evaluate.report import render_report
from kfpkit.core import bootstrap
from kfpkit.core import classification_metrics as m

SPLIT = "test"
CONFUSION_MATRIX_CATEGORIES: Tuple[str, str] = ("0", "1")
# Bootstrap size: 1,000 resamples up to 10k test rows; above that as many hundreds as fit in 10M
# row-resamples (the bootstrap's work grows with rows x resamples): 600 for the 100k sample's 15k test rows,
# 500 at 20k; never fewer than 200 (from 50k rows; the 150k test rows of a 1M table). Intervals narrow as
# 1/sqrt(rows), and 200 resamples still place the 2.5/97.5 percentiles on 5 values each; the Monte-Carlo
# error of the regression rule's share near 95% is then at most +-1.5 points.
MAX_RESAMPLES = 1000
MIN_RESAMPLES = 200
RESAMPLE_CELLS = 10_000_000
# the bootstrap's seed: the same model on the same rows gets the same intervals
BOOTSTRAP_SEED = 0


def bootstrap_resamples(rows: int) -> int:
    """Resamples of the bootstrap for a test split of ``rows`` rows (see :data:`RESAMPLE_CELLS`)."""
    hundreds = RESAMPLE_CELLS // max(int(rows), 1) // 100 * 100
    return int(min(MAX_RESAMPLES, max(MIN_RESAMPLES, hundreds)))


@dataclass
class EvaluationResult:
    """Everything evaluate produces on the test split; ``report_markdown`` renders it for people."""

    metrics: Dict[str, float]
    threshold: float
    confusion_matrix: List[List[int]]
    roc: m.RocCurve
    reliability: List[m.ReliabilityBin]
    slices: List[m.SliceMetrics]
    slice_column: Optional[str]
    baseline_metrics: Optional[Dict[str, float]]
    baseline_label: Optional[str]
    blessed: bool
    reasons: List[str]
    gate: GateSettings
    test_rows: int
    test_positives: int
    intervals: Dict[str, bootstrap.Interval] = field(default_factory=dict)
    decision: Optional[GateDecision] = None
    regression: Optional[bootstrap.PairedDifference] = None
    framework: str = ""
    calibration: Optional[str] = None
    split: str = SPLIT
    report_markdown: str = ""

    def metrics_to_log(self) -> Dict[str, float]:
        """Scalar metrics for the KFP ``Metrics`` artifact.

        The candidate's test metrics, the bounds of their bootstrap intervals (``<metric>_low``,
        ``<metric>_high``), test counts, ``pr_auc_floor``, ``baseline_pr_auc``/``baseline_roc_auc``/``baseline_ece``
        and the paired PR-AUC difference (``pr_auc_difference``, ``pr_auc_difference_low``/``_high``,
        ``regression_share``) when a baseline was scored, and ``blessed`` as 1.0/0.0.
        """
        out = {key: float(value) for key, value in self.metrics.items()}
        for name, interval in self.intervals.items():
            if interval.low is not None and interval.high is not None:
                out[f"{name}_low"], out[f"{name}_high"] = interval.low, interval.high
        out["test_rows"] = float(self.test_rows)
        out["test_positives"] = float(self.test_positives)
        if self.decision is not None:
            out["pr_auc_floor"] = self.decision.pr_auc_floor
        if self.baseline_metrics is not None:
            for key in ("pr_auc", "roc_auc", "ece"):
                out[f"baseline_{key}"] = float(self.baseline_metrics[key])
        if self.regression is not None and self.decision is not None:
            difference = self.regression.interval
            for key, value in (("", difference.point), ("_low", difference.low), ("_high", difference.high)):
                if value is not None:
                    out[f"pr_auc_difference{key}"] = value
            if self.decision.regression_share is not None:
                out["regression_share"] = self.decision.regression_share
        out["blessed"] = 1.0 if self.blessed else 0.0
        return out

    def card_intervals(self) -> Dict[str, Dict[str, Optional[float]]]:
        """The intervals as the model card stores them: ``{metric: Interval.to_dict()}``."""
        return {name: interval.to_dict() for name, interval in self.intervals.items()}


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


def _read_test_split(test_path: str, label_column: str, slice_column: Optional[str]) -> Tuple[Any, np.ndarray]:
    from kfpkit.core.datasets import read_split_frame
    from kfpkit.core.labels import binary_labels, require_both_classes

    what = "test data"
    frame = read_split_frame(
        test_path, what, error=EvaluationError, required=[("label", label_column), ("slice", slice_column)]
    )
    where = f"{what} {test_path}"
    labels = binary_labels(frame[label_column], label_column, where, error=EvaluationError)
    require_both_classes(labels, label_column, where, error=EvaluationError)
    return frame, labels


@dataclass
class _ScoredBaseline:
    """The baseline's scores on the test rows, its threshold and its metrics there."""

    scores: np.ndarray
    threshold: float
    metrics: Dict[str, float]


def _score_baseline(
    baseline_dir: str, label: str, expected_content_sha256: Optional[str], frame: Any, labels: np.ndarray
) -> _ScoredBaseline:
    from kfpkit.core.model_dir import MANIFEST_FILE, ModelDirError, load_model

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
    threshold = baseline.decision_threshold
    return _ScoredBaseline(scores, threshold, m.split_metrics(labels, scores, threshold))


def _score_candidate(
    model_dir: str, test_path: str, label_column: str, frame: Any, rows: int
) -> Tuple[Any, np.ndarray]:
    """Loads the candidate and scores the test rows with it.

    Returns:
        The loaded model and its checked scores.

    Raises:
        EvaluationError: the card's label column differs, the test data does not fit the preprocessing, or
            the scores are invalid.
    """
    from kfpkit.core.model_dir import load_model
    from kfpkit.core.preprocessing import PreprocessingError

    model = load_model(model_dir)
    if model.card.label_column != label_column:
        raise EvaluationError(
            f"model {model_dir} was trained on label column {model.card.label_column!r} but label_column is "
            f"{label_column!r}"
        )
    try:
        raw_scores = model.predict_proba(frame)
    except PreprocessingError as exc:
        raise EvaluationError(f"test data {test_path} does not fit model {model_dir}: {exc}") from exc
    return model, checked_scores(raw_scores, rows, f"model {model_dir}")


def _compare_baseline(
    baseline_dir: Optional[str],
    label: str,
    content_sha256: Optional[str],
    frame: Any,
    labels: np.ndarray,
    notes: Sequence[str],
) -> Tuple[Optional[_ScoredBaseline], List[str]]:
    """Scores the baseline, if any, on the same rows; a failure becomes a warning, not an error.

    Returns:
        The scored baseline (``None``: no regression check) and the reasons: ``notes``, then a warning
        about a baseline that could not be evaluated or a note that none was given.
    """
    reasons = list(notes)
    baseline: Optional[_ScoredBaseline] = None
    if baseline_dir is not None:
        try:
            baseline = _score_baseline(baseline_dir, label, content_sha256, frame, labels)
        except Exception as exc:  # a broken baseline must not stop the gate; record why and go on
            reasons.append(
                f"warning: {label} could not be evaluated ({type(exc).__name__}: {exc}); no regression check against it"
            )
    elif not notes:
        reasons.append("note: no baseline model given; no regression check")
    return baseline, reasons


def evaluate_model(
    model_dir: str,
    test_path: str,
    label_column: str,
    *,
    min_pr_auc_lift: float = DEFAULT_MIN_PR_AUC_LIFT,
    min_pr_auc: float = DEFAULT_MIN_PR_AUC,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    max_ece: Optional[float] = None,
    confidence: float = DEFAULT_CONFIDENCE,
    slice_column: Optional[str] = None,
    baseline_dir: Optional[str] = None,
    baseline_label: Optional[str] = None,
    baseline_content_sha256: Optional[str] = None,
    notes: Sequence[str] = (),
    resamples: Optional[int] = None,
) -> EvaluationResult:
    """Evaluates a model directory on the test split and applies the blessing gate.

    Args:
        model_dir: Local model directory written by train (no manifest needed).
        test_path: The test split: one Parquet file with the raw features and the label.
        label_column: Name of the 0/1 label column in the test data.
        min_pr_auc_lift: PR-AUC floor of the gate as a multiple of the test split's positive rate.
        min_pr_auc: Absolute PR-AUC floor on top of the relative one (0: none).
        max_regression: Largest allowed PR-AUC drop against the baseline.
        max_ece: ECE ceiling of the gate; ``None`` or ``<= 0``: no ceiling.
        confidence: Level of the bootstrap intervals, and the confidence a regression is declared with.
        slice_column: Column of the test data to report metrics per value of; ``None``: no slices.
        baseline_dir: Local model directory of the baseline (with ``MANIFEST.json``; it is verified).
            ``None``: no regression check.
        baseline_label: Name of the baseline in reasons and the report (e.g. ``"baseline fraud-detector v3"``).
        baseline_content_sha256: When given, the baseline manifest's ``content_sha256`` must equal it.
        notes: Reasons recorded before evaluation (e.g. why there is no baseline); listed after the gate's
            own reasons.
        resamples: Bootstrap resamples; ``None``: :func:`bootstrap_resamples` of the test rows.

    Returns:
        The metrics with their intervals, curves, slices, baseline metrics, decision, reasons and Markdown report.

    Raises:
        EvaluationError: bad gate settings, test file/label/slice column problems, a single-class test
            split, invalid scores or a model card whose label column differs from ``label_column``.
        kfpkit.core.model_dir.ModelDirError: the candidate model directory is incomplete.
        kfpkit.core.model_card.ModelCardError: its model card is invalid.
    """
    gate = GateSettings.checked(min_pr_auc_lift, min_pr_auc, max_regression, max_ece, confidence)
    frame, labels = _read_test_split(test_path, label_column, slice_column)
    model, scores = _score_candidate(model_dir, test_path, label_column, frame, labels.shape[0])
    threshold = model.decision_threshold
    metrics = m.split_metrics(labels, scores, threshold)
    label = baseline_label or "baseline"
    baseline, reasons = _compare_baseline(baseline_dir, label, baseline_content_sha256, frame, labels, notes)
    draws = resamples or bootstrap_resamples(labels.shape[0])
    intervals = bootstrap.intervals(labels, scores, threshold, resamples=draws, level=confidence, seed=BOOTSTRAP_SEED)
    regression = None
    if baseline is not None:
        regression = bootstrap.paired_difference(
            labels,
            baseline.scores,
            scores,
            "pr_auc",
            threshold,
            baseline.threshold,
            resamples=draws,
            level=confidence,
            seed=BOOTSTRAP_SEED,
        )
    decision = blessing_decision(
        GateEvidence(
            pr_auc=intervals["pr_auc"],
            positive_rate=float(labels.mean()),
            ece=intervals["ece"],
            regression=regression,
            baseline_pr_auc=None if baseline is None else baseline.metrics["pr_auc"],
            baseline_label=label,
        ),
        gate,
    )
    result = EvaluationResult(
        metrics=metrics,
        threshold=threshold,
        confusion_matrix=m.confusion_counts(labels, scores, threshold).matrix,
        roc=m.roc_points(labels, scores),
        reliability=m.reliability_curve(labels, scores),
        slices=[] if slice_column is None else m.slice_metrics(labels, scores, frame[slice_column].tolist(), threshold),
        slice_column=slice_column,
        baseline_metrics=None if baseline is None else baseline.metrics,
        baseline_label=label if baseline is not None else None,
        blessed=decision.blessed,
        reasons=decision.reasons + reasons,
        gate=gate,
        test_rows=int(labels.shape[0]),
        test_positives=int(labels.sum()),
        intervals=intervals,
        decision=decision,
        regression=regression,
        framework=model.framework,
        calibration=model.card.calibration,
    )
    result.report_markdown = render_report(result)
    return result


def write_evaluated_model(model_dir: str, result: EvaluationResult, output_dir: str) -> None:
    """Copies the model directory to ``output_dir`` with the test split's figures in its model card.

    The card gains ``metrics["test"]`` (the candidate's test metrics) and ``intervals["test"]`` (their
    bootstrap intervals, :meth:`EvaluationResult.card_intervals`); every other file is copied as it is
    (a ``MANIFEST.json``, if any, is written again to cover the new card). Written into a staging folder
    and renamed into place: ``output_dir`` is complete or untouched.

    Args:
        model_dir: The candidate's model directory that ``result`` evaluated.
        result: Its evaluation on the test split.
        output_dir: Where to write the copy (replaced when it exists).
    """
    from kfpkit.core import model_dir as md
    from kfpkit.core.publish import publish_directory, staging_directory

    staging = staging_directory(output_dir)
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        card = md.read_model_card(staging)
        card.metrics = {**card.metrics, result.split: {key: float(value) for key, value in result.metrics.items()}}
        card.intervals = {**card.intervals, result.split: result.card_intervals()}
        md.write_model_card(staging, card)
        if os.path.exists(os.path.join(staging, md.MANIFEST_FILE)):
            md.write_manifest(staging)
        publish_directory(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass
class _RegistryBaseline:
    """The registry's latest blessed version, fetched for :func:`evaluate_model` (or why there is none)."""

    notes: List[str] = field(default_factory=list)
    directory: Optional[str] = None
    label: Optional[str] = None
    content_sha256: Optional[str] = None


def _fetch_registry_baseline(root: str, model_name: str, workdir: str) -> _RegistryBaseline:
    """Materializes the latest blessed version of ``model_name`` into ``workdir``.

    A missing version or a failed lookup or fetch is recorded in ``notes`` instead of raised.
    """
    from kfpkit.core import registry

    where = f"registry {root}"
    baseline = _RegistryBaseline()
    try:
        entry = registry.latest_blessed(root, model_name)
    except Exception as exc:
        baseline.notes.append(
            f"warning: looking up the latest blessed {model_name!r} in {where} failed "
            f"({type(exc).__name__}: {exc}); no regression check"
        )
        return baseline
    if entry is None:
        baseline.notes.append(
            f"note: {where} has no blessed version of {model_name!r} yet (first run): no baseline, no regression check"
        )
        return baseline
    baseline.label = f"baseline {model_name} v{entry.version}"
    try:
        baseline.directory = registry.materialize(entry.uri, os.path.join(workdir, "baseline"))
        baseline.content_sha256 = entry.content_sha256
    except Exception as exc:
        baseline.notes.append(
            f"warning: {baseline.label} could not be fetched from {entry.uri} "
            f"({type(exc).__name__}: {exc}); no regression check"
        )
    return baseline


def run_evaluation(
    model_dir: str,
    test_path: str,
    label_column: str,
    *,
    min_pr_auc_lift: float = DEFAULT_MIN_PR_AUC_LIFT,
    min_pr_auc: float = DEFAULT_MIN_PR_AUC,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    max_ece: Optional[float] = None,
    confidence: float = DEFAULT_CONFIDENCE,
    slice_column: Optional[str] = None,
    baseline_registry_root: Optional[str] = None,
    model_name: Optional[str] = None,
) -> EvaluationResult:
    """Looks up the baseline in the registry, then :func:`evaluate_model`.

    With ``baseline_registry_root`` and ``model_name`` set, the registry's latest blessed version of
    ``model_name`` (``registry.latest_blessed``) is materialized into a temporary directory (removed
    afterwards) and used as the baseline. No blessed version yet (first run), or a lookup/fetch failure,
    is recorded as a reason and the regression check is skipped.

    Raises:
        EvaluationError: only one of ``baseline_registry_root`` and ``model_name`` is set, or any error of
            :func:`evaluate_model`.
    """
    from kfpkit.components.process_exit import skip_final_garbage_collection

    skip_final_garbage_collection()  # this task's process exits without collecting torch's objects
    if (baseline_registry_root is None) != (model_name is None):
        missing = "model_name" if model_name is None else "baseline_registry_root"
        raise EvaluationError(
            f"baseline_registry_root and model_name go together: {missing} is not set "
            "(set both to compare with the registry's latest blessed model, or neither)"
        )
    evaluate = functools.partial(
        evaluate_model,
        model_dir,
        test_path,
        label_column,
        min_pr_auc_lift=min_pr_auc_lift,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        max_ece=max_ece,
        confidence=confidence,
        slice_column=slice_column,
    )
    if baseline_registry_root is None or model_name is None:  # both unset (checked above)
        return evaluate(
            notes=[
                "note: no baseline registry configured (baseline_registry_root/model_name not set); no regression check"
            ],
        )
    from kfpkit.core import registry

    registry.validate_model_name(model_name)  # a bad name is a configuration error, not a missing baseline
    workdir = tempfile.mkdtemp(prefix="kfpkit-evaluate-baseline-")
    try:
        baseline = _fetch_registry_baseline(baseline_registry_root, model_name, workdir)
        return evaluate(
            baseline_dir=baseline.directory,
            baseline_label=baseline.label,
            baseline_content_sha256=baseline.content_sha256,
            notes=baseline.notes,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
