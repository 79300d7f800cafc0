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
    min_pr_auc: float = 0.2,
    max_regression: float = 0.01,
    max_ece: Optional[float] = None,
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
    its calibrated probability is >= the threshold). The model is blessed when its PR-AUC is at least
    ``min_pr_auc``, its ECE at most ``max_ece`` (when set) and, when the registry holds a blessed version
    of ``model_name``, that baseline is scored on the same rows and the candidate's PR-AUC is at least the
    baseline's minus ``max_regression``. A baseline that cannot be fetched, verified or scored is recorded
    as a reason and the regression check is skipped.

    Args:
        model: The trained model: a model directory (model file, preprocessing.json, calibration.json,
            model_card.json) at the artifact path.
        test_data: The test split: one Parquet file with the raw features and the label.
        label_column: Name of the 0/1 label column in the test data.
        metrics: Scalar test-split metrics of the candidate (roc_auc, pr_auc, log_loss, brier_score, ece,
            precision, recall, f1, decision_threshold, test_rows, test_positives, baseline_pr_auc,
            baseline_roc_auc and baseline_ece when a baseline was scored, blessed as 1/0), plus metadata
            ``split`` ("test") and ``reasons``: the gate's human-readable reasons, passed and failed.
        classification_metrics: Confusion matrix at the decision threshold (categories "0", "1") and
            the ROC curve (at most 200 points, finite thresholds) on the test split, for the KFP UI.
        report: Markdown report on the test split: verdict, gate reasons, metrics against the baseline,
            reliability plot and table, threshold rule, confusion matrix and metrics per value of
            ``slice_column``.
        min_pr_auc: PR-AUC floor of the gate (a model ranking at random scores the positive rate, ~0.02
            for fraud with 2% positives).
        max_regression: Largest allowed absolute PR-AUC drop against the baseline.
        max_ece: ECE ceiling of the gate (e.g. 0.01); unset or <= 0: no ceiling.
        slice_column: Column of the test data to report metrics per value of; unset or empty: no slice table.
        baseline_registry_root: Registry root (local path, gs:// or s3://) to take the baseline from;
            set together with ``model_name``.
        model_name: Model name in the registry whose latest blessed version is the baseline.

    Returns:
        Whether the model is blessed (passed the gate). A plain ``bool`` (``Output``), so that
        ``dsl.If(task.outputs["Output"] == True)`` works on every backend, kfp.local included.
    """
    from kfpkit.components.evaluate.logic import CONFUSION_MATRIX_CATEGORIES, run_evaluation

    result = run_evaluation(
        model_dir=model.path,
        test_path=test_data.path,
        label_column=label_column,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        max_ece=max_ece,
        slice_column=slice_column or None,
        baseline_registry_root=baseline_registry_root,
        model_name=model_name,
    )
    for name, value in result.metrics_to_log().items():
        metrics.log_metric(name, value)
    metrics.metadata["split"] = result.split
    metrics.metadata["reasons"] = list(result.reasons)
    classification_metrics.log_confusion_matrix(list(CONFUSION_MATRIX_CATEGORIES), result.confusion_matrix)
    classification_metrics.log_roc_curve(result.roc.fpr, result.roc.tpr, result.roc.thresholds)
    with open(report.path, "w", encoding="utf-8") as fh:
        fh.write(result.report_markdown)
    report.metadata.update({"blessed": result.blessed, "split": result.split, "reasons": list(result.reasons)})
    return result.blessed
