"""The KFP component: its python_func with tmp-path artifacts, its interface and image."""

from __future__ import annotations

import dataclasses
import inspect
import os

import pytest
from kfp.dsl import Dataset, Metrics, Model

from kfpkit.components import images
from kfpkit.components.train.component import train
from kfpkit.components.train.logic import TrainError, TrainParams
from kfpkit.core import model_dir as md

LABEL = "is_fraud"


def _artifacts(splits, tmp_path):
    train_data = Dataset(uri=splits.train, metadata={"source_uri": "synthetic://fraud?rows=4500", "split": "train"})
    eval_data = Dataset(uri=splits.eval, metadata={"split": "eval"})
    return train_data, eval_data, Model(uri=str(tmp_path / "model")), Metrics(uri=str(tmp_path / "metrics"))


def test_component_writes_the_model_directory_at_model_path_and_reports_metrics(splits, tmp_path, tools):
    train_data, eval_data, model, metrics = _artifacts(splits, tmp_path)
    train.python_func(
        train_data=train_data,
        eval_data=eval_data,
        label_column=LABEL,
        model=model,
        metrics=metrics,
        epochs=3,
        batch_size=256,
        hidden_units=32,
        exclude_columns=["transaction_id"],
        pipeline_run="pipeline-run-7",
    )
    loaded = md.load_model(model.path)
    assert loaded.framework == "pytorch"
    assert model.metadata["framework"] == "pytorch"
    assert model.metadata["decision_threshold"] == loaded.decision_threshold
    assert model.metadata["metrics"]["eval"]["pr_auc"] == loaded.card.metrics["eval"]["pr_auc"]
    assert model.metadata["calibration"] == loaded.card.calibration == "platt"
    names = ("pr_auc", "roc_auc", "brier_score", "log_loss", "ece", "f1", "best_epoch", "rows_per_second")
    for name in (*names, "decision_threshold"):
        assert isinstance(metrics.metadata[name], (int, float)), name
    assert metrics.metadata["split"] == "eval"
    assert metrics.metadata["pr_auc"] > 3 * splits.eval_frame[LABEL].mean()
    assert loaded.card.data.source_uri == "synthetic://fraud?rows=4500"
    assert loaded.card.pipeline_run == "pipeline-run-7"
    assert loaded.card.parameters["epochs"] == 3
    assert "transaction_id" not in loaded.card.feature_order


def test_component_trains_the_sklearn_baseline(splits, tmp_path):
    train_data, eval_data, model, metrics = _artifacts(splits, tmp_path)
    train.python_func(
        train_data=train_data,
        eval_data=eval_data,
        label_column=LABEL,
        model=model,
        metrics=metrics,
        framework="sklearn",
    )
    assert md.load_model(model.path).framework == "sklearn"
    assert os.path.isfile(os.path.join(model.path, md.SKOPS_FILE))
    assert metrics.metadata["best_epoch"] >= 1


def test_component_rejects_an_unknown_framework_and_writes_nothing(splits, tmp_path):
    train_data, eval_data, model, metrics = _artifacts(splits, tmp_path)
    with pytest.raises(TrainError, match=r"framework must be one of \['pytorch', 'sklearn'\], got 'tensorflow'"):
        train.python_func(
            train_data=train_data,
            eval_data=eval_data,
            label_column=LABEL,
            model=model,
            metrics=metrics,
            framework="tensorflow",
        )
    assert not os.path.exists(model.path)
    assert metrics.metadata == {} and model.metadata == {}


def test_component_defaults_are_the_train_params_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(TrainParams)}
    signature = inspect.signature(train.python_func)
    shared = [n for n in signature.parameters if n in defaults]
    assert len(shared) == 15  # every TrainParams field but device and cpu_threads
    for name in shared:
        assert signature.parameters[name].default == defaults[name], name


def test_component_runs_on_the_train_image_without_installing_kfp():
    container = train.component_spec.implementation.container
    assert container.image == images.train_image()
    assert "pip install" not in " ".join(container.command or [])
    inputs = train.component_spec.inputs
    assert inputs["checkpoint_dir"].optional and inputs["exclude_columns"].optional
    # train sees two splits; the test split is evaluate's alone
    assert sorted(n for n, spec in inputs.items() if spec.type == "system.Dataset@0.0.1") == ["eval_data", "train_data"]
