"""KFP component: evaluate a trained model on the eval split and decide whether it is blessed."""

from typing import Optional

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def evaluate(
    model: Input[Model],
    eval_data: Input[Dataset],
    label_column: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    min_pr_auc: float = 0.2,
    max_regression: float = 0.01,
    slice_column: Optional[str] = None,
    baseline_registry_root: Optional[str] = None,
    model_name: Optional[str] = None,
) -> bool:
    """Scores the eval split with the trained model and applies the blessing gate.

    Computes ROC-AUC, PR-AUC (average precision), log loss, Brier score, and precision, recall and F1 at
    the model card's ``decision_threshold`` (train sets it to the max-F1 threshold on the eval split; a
    row is positive when its score is >= the threshold). The model is blessed when its PR-AUC is at least
    ``min_pr_auc`` and, when the registry holds a blessed version of ``model_name``, that baseline is
    scored on the same rows and the candidate's PR-AUC is at least the baseline's minus
    ``max_regression``. A baseline that cannot be fetched, verified or scored is recorded as a reason and
    only the floor is checked.

    Args:
        model: The trained model: a model directory (model file, preprocessing.json, model_card.json)
            at the artifact path.
        eval_data: The eval split: one Parquet file with the raw features and the label.
        label_column: Name of the 0/1 label column in the eval data.
        metrics: Scalar metrics of the candidate (roc_auc, pr_auc, log_loss, brier_score, precision,
            recall, f1, decision_threshold, eval_rows, eval_positives, baseline_pr_auc and
            baseline_roc_auc when a baseline was scored, blessed as 1/0), plus metadata ``reasons``: the
            gate's human-readable reasons, passed and failed.
        classification_metrics: Confusion matrix at the decision threshold (categories "0", "1") and
            the ROC curve (at most 200 points, finite thresholds) for the KFP UI.
        report: Markdown report: verdict, gate reasons, metrics against the baseline, threshold rule,
            confusion matrix and metrics per value of ``slice_column``.
        min_pr_auc: PR-AUC floor of the gate (a model ranking at random scores the positive rate, ~0.02
            for fraud with 2% positives).
        max_regression: Largest allowed absolute PR-AUC drop against the baseline.
        slice_column: Column of the eval data to report metrics per value of; unset or empty: no slice table.
        baseline_registry_root: Registry root (local path, gs:// or s3://) to take the baseline from;
            set together with ``model_name``.
        model_name: Model name in the registry whose latest blessed version is the baseline.

    Returns:
        Whether the model is blessed (passed the gate). A plain ``bool`` (``Output``), so that
        ``dsl.If(task.outputs["Output"] == True)`` works on every backend, kfp.local included.
    """

    from kfpkit.components.common.io import write_text_atomic
    from kfpkit.components.evaluate.logic import CONFUSION_MATRIX_CATEGORIES, run_evaluation

    result = run_evaluation(
        model_dir=model.path,
        eval_path=eval_data.path,
        label_column=label_column,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        slice_column=slice_column or None,
        baseline_registry_root=baseline_registry_root,
        model_name=model_name,
    )
    for name, value in result.metrics_to_log().items():
        metrics.log_metric(name, value)
    metrics.metadata["reasons"] = list(result.reasons)
    classification_metrics.log_confusion_matrix(list(CONFUSION_MATRIX_CATEGORIES), result.confusion_matrix)
    classification_metrics.log_roc_curve(result.roc.fpr, result.roc.tpr, result.roc.thresholds)
    write_text_atomic(report.path, result.report_markdown)
    report.metadata.update({"blessed": result.blessed, "reasons": list(result.reasons)})
    return result.blessed
