"""KFP component: evaluate a trained model on the test split and decide whether it is blessed."""

from typing import Optional

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    label_column: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    evaluated_model: Output[Model],
    min_pr_auc_lift: float = 5.0,
    min_pr_auc: float = 0.0,
    max_regression: float = 0.01,
    max_ece: Optional[float] = None,
    confidence: float = 0.95,
    slice_column: Optional[str] = None,
    baseline_registry_root: Optional[str] = None,
    model_name: Optional[str] = None,
) -> bool:
    """Scores the test split with the trained model and applies the blessing gate.

    Every metric, slice and gate decision uses the test split only (train never reads it). The model
    directory is scored as serving scores it: shared preprocessing, model, then the calibration fitted on
    the eval split. Computes ROC-AUC, PR-AUC (average precision), log loss, Brier score, expected
    calibration error (ECE, 15 equal-width bins) with its reliability curve, and precision, recall and F1
    at the model card's ``decision_threshold`` (chosen by train on the eval split; a row is positive when
    its calibrated probability is >= the threshold), each with a stratified, seeded bootstrap interval.
    The model is blessed when its PR-AUC clears the floor (``min_pr_auc_lift`` x the test split's positive
    rate, at most a tenth of the way from chance to 1, or ``min_pr_auc`` when higher; an interval across
    the floor passes when the point estimate reaches it and the interval lies above chance), its ECE is at
    most ``max_ece`` (when set) and, when the registry holds a blessed version of ``model_name``, a paired
    bootstrap of the PR-AUC difference on the same rows does not show a drop above ``max_regression`` with
    ``confidence``. A baseline that cannot be fetched, verified or scored is recorded as a reason and the
    regression check is skipped.

    Args:
        model: The trained model: a model directory (model file, preprocessing.json, calibration.json,
            model_card.json) at the artifact path.
        test_data: The test split: one Parquet file with the raw features and the label.
        label_column: Name of the 0/1 label column in the test data.
        metrics: Scalar test-split metrics of the candidate (roc_auc, pr_auc, log_loss, brier_score, ece,
            precision, recall, f1, decision_threshold; ``<metric>_low``/``<metric>_high``, the bounds of
            their bootstrap intervals; test_rows, test_positives, pr_auc_floor; baseline_pr_auc,
            baseline_roc_auc, baseline_ece, pr_auc_difference(_low/_high) and regression_share when a
            baseline was scored; blessed as 1/0), plus metadata ``split`` ("test"), ``reasons`` (the
            gate's human-readable reasons, passed and failed) and ``intervals`` (per metric: point, low,
            high, level, resamples).
        classification_metrics: Confusion matrix at the decision threshold (categories "0", "1") and
            the ROC curve (at most 200 points, finite thresholds) on the test split, for the KFP UI.
        report: Markdown report on the test split: verdict, gate reasons, metrics against the baseline,
            reliability plot and table, threshold rule, confusion matrix and metrics per value of
            ``slice_column``.
        evaluated_model: The candidate's model directory, its model card holding the test split's metrics
            (``metrics["test"]``) and their bootstrap intervals (``intervals["test"]``); push takes this one.
        min_pr_auc_lift: PR-AUC floor of the gate as a multiple of the test split's positive rate (the
            PR-AUC of a model ranking at random), at most a tenth of the way from chance to 1; >= 1.
        min_pr_auc: Absolute PR-AUC floor on top of the relative one; 0: none.
        max_regression: Largest allowed PR-AUC drop against the baseline (paired bootstrap on the same rows).
        max_ece: ECE ceiling of the gate (e.g. 0.01); unset or <= 0: no ceiling.
        confidence: Level of the bootstrap intervals, and the share of paired resamples that must show a
            drop above ``max_regression`` for a regression to be declared.
        slice_column: Column of the test data to report metrics per value of; unset or empty: no slice table.
        baseline_registry_root: Registry root (local path, gs:// or s3://) to take the baseline from;
            set together with ``model_name``.
        model_name: Model name in the registry whose latest blessed version is the baseline.

    Returns:
        Whether the model is blessed (passed the gate). A plain ``bool`` (``Output``), so that
        ``dsl.If(task.outputs["Output"] == True)`` works on every backend, kfp.local included.
    """
    from kfpkit.components.evaluate.logic import CONFUSION_MATRIX_CATEGORIES, run_evaluation, write_evaluated_model

    result = run_evaluation(
        model_dir=model.path,
        test_path=test_data.path,
        label_column=label_column,
        min_pr_auc_lift=min_pr_auc_lift,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        max_ece=max_ece,
        confidence=confidence,
        slice_column=slice_column or None,
        baseline_registry_root=baseline_registry_root,
        model_name=model_name,
    )
    for name, value in result.metrics_to_log().items():
        metrics.log_metric(name, value)
    metrics.metadata["split"] = result.split
    metrics.metadata["reasons"] = list(result.reasons)
    metrics.metadata["intervals"] = result.card_intervals()
    classification_metrics.log_confusion_matrix(list(CONFUSION_MATRIX_CATEGORIES), result.confusion_matrix)
    classification_metrics.log_roc_curve(result.roc.fpr, result.roc.tpr, result.roc.thresholds)
    with open(report.path, "w", encoding="utf-8") as fh:
        fh.write(result.report_markdown)
    report.metadata.update({"blessed": result.blessed, "split": result.split, "reasons": list(result.reasons)})
    write_evaluated_model(model.path, result, evaluated_model.path)
    return result.blessed
