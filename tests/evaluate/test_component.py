"""The evaluate KFP component: python_func with local artifacts, compilation and its interface."""

import inspect
import math
import os

import pytest
from kfp.dsl import ClassificationMetrics, Dataset, Markdown, Metrics, Model

from kfpkit.components.evaluate import logic
from kfpkit.components.evaluate.component import evaluate
from kfpkit.components.evaluate.logic import EvaluationError
from kfpkit.core import registry
from kfpkit.core.model_card import read_model_card

LABEL = "is_fraud"


def _artifacts(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return {
        "metrics": Metrics(uri=str(out / "metrics")),
        "classification_metrics": ClassificationMetrics(uri=str(out / "classification_metrics")),
        "report": Markdown(uri=str(out / "report.md")),
        "evaluated_model": Model(uri=str(out / "evaluated_model")),
    }


def test_component_returns_blessed_and_writes_report_metrics_and_curves(models, tmp_path):
    outputs = _artifacts(tmp_path)
    result = evaluate.python_func(
        model=Model(uri=models.strong),
        test_data=Dataset(uri=models.test_path),
        label_column=LABEL,
        min_pr_auc=0.1,
        max_ece=0.5,
        slice_column="channel",
        **outputs,
    )
    assert result is True

    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "**Verdict: BLESSED**" in report
    assert "## Slices by `channel`" in report
    assert "maximizes F1 on the eval split" in report and "comes from the **test split** only" in report
    expected = logic.run_evaluation(
        models.strong, models.test_path, LABEL, min_pr_auc=0.1, max_ece=0.5, slice_column="channel"
    )
    assert report == expected.report_markdown

    metrics = outputs["metrics"].metadata
    keys = ("roc_auc", "pr_auc", "log_loss", "brier_score", "ece", "precision", "recall", "f1", "decision_threshold")
    for key in keys:
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
    assert metrics["blessed"] == 1.0
    assert metrics["test_rows"] == float(len(models.test_frame))
    assert "baseline_pr_auc" not in metrics
    assert metrics["split"] == "test" and outputs["report"].metadata["split"] == "test"
    assert metrics["reasons"][0].startswith("pass: PR-AUC") and metrics["reasons"][1].startswith("pass: ECE")
    assert any("no baseline registry configured" in r for r in metrics["reasons"])
    assert metrics["pr_auc_low"] < metrics["pr_auc"] < metrics["pr_auc_high"]
    assert metrics["intervals"] == expected.card_intervals()
    assert 0 < metrics["pr_auc_floor"] < metrics["pr_auc"]

    card = read_model_card(str(tmp_path / "out" / "evaluated_model"))
    assert card.intervals["test"] == expected.card_intervals()
    assert card.metrics["test"]["pr_auc"] == metrics["pr_auc"]

    classification = outputs["classification_metrics"].metadata
    matrix = classification["confusionMatrix"]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == ["0", "1"]
    assert sum(sum(row["row"]) for row in matrix["rows"]) == len(models.test_frame)
    positives = int(models.test_frame[LABEL].sum())
    assert sum(matrix["rows"][1]["row"]) == positives
    curve = classification["confidenceMetrics"]
    assert 2 < len(curve) <= 200
    assert all(math.isfinite(point["confidenceThreshold"]) for point in curve)
    assert curve[0] == {"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0}
    assert sorted(os.listdir(tmp_path / "out")) == ["evaluated_model", "report.md"]  # no temporary files left behind


def test_component_compares_with_the_registry_baseline_and_logs_it(models, tmp_path):
    root = str(tmp_path / "registry")
    registry.push_version(models.strong, root, "fraud")
    outputs = _artifacts(tmp_path)
    result = evaluate.python_func(
        model=Model(uri=models.weak),
        test_data=Dataset(uri=models.test_path),
        label_column=LABEL,
        min_pr_auc=0.0,
        baseline_registry_root=root,
        model_name="fraud",
        **outputs,
    )
    assert result is False
    metrics = outputs["metrics"].metadata
    assert metrics["blessed"] == 0.0
    assert metrics["baseline_pr_auc"] > metrics["pr_auc"] + 0.01
    fail = [r for r in metrics["reasons"] if r.startswith("fail:")]
    assert len(fail) == 2 and fail[0].startswith("fail: PR-AUC") and "below the floor" in fail[0]
    assert "vs baseline fraud v1" in fail[1] and fail[1].endswith("≥ 95%: regression")
    assert metrics["pr_auc_difference_high"] < -0.01 and metrics["regression_share"] == 1.0
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "**Verdict: NOT BLESSED**" in report and fail[1] in report
    assert outputs["report"].metadata["blessed"] is False


def test_component_with_missing_label_column_fails_and_writes_no_report(models, tmp_path):
    outputs = _artifacts(tmp_path)
    with pytest.raises(EvaluationError, match="label column 'fraud_flag' not found"):
        evaluate.python_func(
            model=Model(uri=models.strong),
            test_data=Dataset(uri=models.test_path),
            label_column="fraud_flag",
            **outputs,
        )
    assert os.listdir(tmp_path / "out") == []
    assert outputs["metrics"].metadata == {}


def test_component_with_an_incomplete_model_directory_fails_naming_the_file(models, tmp_path):
    outputs = _artifacts(tmp_path)
    empty = tmp_path / "model"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no model_card\.json"):
        evaluate.python_func(
            model=Model(uri=str(empty)), test_data=Dataset(uri=models.test_path), label_column=LABEL, **outputs
        )
    assert os.listdir(tmp_path / "out") == []


def test_component_defaults_match_the_documented_logic_defaults():
    params = inspect.signature(evaluate.python_func).parameters
    assert params["min_pr_auc_lift"].default == logic.DEFAULT_MIN_PR_AUC_LIFT
    assert params["min_pr_auc"].default == logic.DEFAULT_MIN_PR_AUC
    assert params["confidence"].default == logic.DEFAULT_CONFIDENCE
    assert params["max_regression"].default == logic.DEFAULT_MAX_REGRESSION
    assert params["slice_column"].default is None and params["max_ece"].default is None
    assert params["baseline_registry_root"].default is None and params["model_name"].default is None


def test_component_compiles_with_typed_inputs_and_outputs(tmp_path):
    from kfp import compiler

    path = tmp_path / "evaluate.yaml"
    compiler.Compiler().compile(evaluate, str(path))
    spec = evaluate.component_spec
    assert spec.inputs["model"].type == "system.Model@0.0.1"
    assert spec.inputs["test_data"].type == "system.Dataset@0.0.1"
    assert "eval_data" not in spec.inputs
    assert spec.inputs["max_ece"].optional is True
    assert spec.inputs["slice_column"].optional is True
    assert spec.outputs["metrics"].type == "system.Metrics@0.0.1"
    assert spec.outputs["classification_metrics"].type == "system.ClassificationMetrics@0.0.1"
    assert spec.outputs["report"].type == "system.Markdown@0.0.1"
    assert spec.outputs["evaluated_model"].type == "system.Model@0.0.1"
    assert spec.outputs["Output"].type == "Boolean"
    text = path.read_text()
    assert "kfpkit-base" in text
    assert "pip install" not in text  # install_kfp_package=False: the image brings kfp and kfpkit


def test_component_source_as_shipped_by_kfp_runs_on_its_own(models, tmp_path):
    """KFP ships only the function source (plus its preamble) to the container: the body must import
    everything it uses. Executing that exact program text in a fresh namespace proves it, in-process."""
    program = evaluate.component_spec.implementation.container.command[-1]
    namespace = {"__name__": "kfp_component_program"}
    exec(compile(program, "<evaluate component program>", "exec"), namespace)
    outputs = _artifacts(tmp_path)
    result = namespace["evaluate"](
        model=Model(uri=models.strong), test_data=Dataset(uri=models.test_path), label_column=LABEL, **outputs
    )
    assert result is True
    assert "**Verdict: BLESSED**" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
