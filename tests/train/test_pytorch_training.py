"""train_model with framework="pytorch" on tiny real data: learning, determinism, export, model card."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from kfpkit.components.train.logic import train_model
from kfpkit.components.train.torch_trainer import TabularNet
from kfpkit.core import model_dir as md
from kfpkit.core.preprocessing import PreprocessingSpec

LABEL = "is_fraud"


def _torchscript_state(directory: str) -> dict:
    module = torch.jit.load(os.path.join(directory, md.TORCHSCRIPT_FILE))
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_pytorch_model_learns_well_above_the_base_rate(trained_pytorch, splits):
    metrics = trained_pytorch.result.metrics
    base_rate = float(splits.eval_frame[LABEL].mean())
    assert 0.05 < base_rate < 0.25
    assert metrics["pr_auc"] > 3 * base_rate
    assert metrics["roc_auc"] > 0.8
    # the history shows training, not a lucky initialization
    history = trained_pytorch.result.history
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_metrics_in_card_are_those_of_the_exported_model(trained_pytorch, splits):
    loaded = md.load_model(trained_pytorch.directory)
    probabilities = loaded.predict_proba(splits.eval_frame)
    labels = splits.eval_frame[LABEL].to_numpy()
    eval_metrics = loaded.card.metrics["eval"]
    assert eval_metrics["pr_auc"] == pytest.approx(average_precision_score(labels, probabilities), abs=1e-6)
    assert eval_metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, probabilities), abs=1e-6)


def test_decision_threshold_maximizes_f1_of_the_calibrated_eval_probabilities(trained_pytorch, splits):
    loaded = md.load_model(trained_pytorch.directory)
    labels = splits.eval_frame[LABEL].to_numpy()
    probabilities = loaded.predict_proba(splits.eval_frame)
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    assert loaded.decision_threshold == pytest.approx(float(thresholds[np.argmax(f1)]), abs=1e-6)
    predicted = probabilities >= loaded.decision_threshold
    tp = int((predicted & (labels == 1)).sum())
    card_f1 = loaded.card.metrics["eval"]["f1"]
    assert card_f1 == pytest.approx(2 * tp / (predicted.sum() + labels.sum()), abs=1e-6)
    assert card_f1 == pytest.approx(float(f1.max()), abs=1e-6)
    assert trained_pytorch.result.decision_threshold == loaded.decision_threshold


def test_exported_torchscript_gives_the_in_memory_models_probabilities(trained_pytorch, splits):
    loaded = md.load_model(trained_pytorch.directory)
    numeric, categorical = loaded.spec.transform(splits.eval_frame)
    scripted = loaded.predict_uncalibrated_arrays(numeric, categorical)
    # rebuild the eager network from the exported weights and run it in memory
    card = loaded.card.parameters
    net = TabularNet(
        n_numeric=numeric.shape[1],
        cardinalities=loaded.spec.cardinalities,
        embedding_dim=card["embedding_dim"],
        hidden_units=card["hidden_units"],
        hidden_layers=card["hidden_layers"],
        dropout=card["dropout"],
    )
    state = _torchscript_state(trained_pytorch.directory)
    net.load_state_dict({k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")})
    net.eval()
    with torch.no_grad():
        eager = torch.sigmoid(net(torch.from_numpy(numeric), torch.from_numpy(categorical))).numpy()
    assert scripted.shape == (len(splits.eval_frame),)
    np.testing.assert_allclose(scripted, eager, rtol=0, atol=1e-6)


def test_torchscript_contract_float32_probabilities_of_shape_n(trained_pytorch, splits):
    module = torch.jit.load(os.path.join(trained_pytorch.directory, md.TORCHSCRIPT_FILE))
    spec = PreprocessingSpec.load(os.path.join(trained_pytorch.directory, md.PREPROCESSING_FILE))
    numeric, categorical = spec.transform(splits.eval_frame.head(17))
    out = module(torch.from_numpy(numeric), torch.from_numpy(categorical))
    assert out.dtype == torch.float32 and tuple(out.shape) == (17,)
    assert bool(((out >= 0) & (out <= 1)).all())
    with pytest.raises(Exception, match="numeric must be float32"):
        module(torch.from_numpy(numeric[:, :-1]), torch.from_numpy(categorical))


def test_unknown_categories_map_to_the_unknown_bucket_without_error(trained_pytorch, splits):
    loaded = md.load_model(trained_pytorch.directory)
    frame = splits.eval_frame.head(50).copy()
    frame["merchant_category"] = "never-seen-merchant"
    frame.loc[frame.index[:10], "channel"] = None
    numeric, categorical = loaded.spec.transform(frame)
    merchant = loaded.spec.categorical_names.index("merchant_category")
    assert (categorical[:, merchant] == 0).all()
    probabilities = loaded.predict_proba(frame)
    assert np.isfinite(probabilities).all() and ((probabilities >= 0) & (probabilities <= 1)).all()
    # out-of-range indices reaching the TorchScript module are treated as the unknown bucket too
    outside = categorical.copy()
    outside[:, merchant] = np.where(np.arange(len(frame)) % 2 == 0, 10_000, -3)
    np.testing.assert_array_equal(
        loaded.predict_proba_arrays(numeric, outside), loaded.predict_proba_arrays(numeric, categorical)
    )


def test_same_seed_gives_identical_weights_and_metrics_on_cpu(splits, tmp_path, tools):
    params = tools.fast_params(epochs=3)
    first = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "a"), params)
    second = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "b"), params)
    other = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "c"), tools.fast_params(epochs=3, seed=1))
    state_a, state_b = _torchscript_state(first.output_dir), _torchscript_state(second.output_dir)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    speed = ("rows_per_second",)
    assert {k: v for k, v in first.metrics.items() if k not in speed} == {
        k: v for k, v in second.metrics.items() if k not in speed
    }
    assert first.decision_threshold == second.decision_threshold
    state_other = _torchscript_state(other.output_dir)
    assert not torch.equal(state_a["net.embedding.weight"], state_other["net.embedding.weight"])


def test_model_card_records_lineage_parameters_metrics_per_split_and_versions(trained_pytorch, splits):
    card = md.read_model_card(trained_pytorch.directory)
    assert card.card_version == 1
    assert card.framework == "pytorch" and card.model_file == md.TORCHSCRIPT_FILE
    assert card.label_column == LABEL
    assert card.feature_order == ["amount", "merchant_category", "channel", "hour", "distance_km"]
    assert 0 < card.decision_threshold < 1
    assert card.calibration == "platt"
    assert set(card.data.splits) == {"train", "eval"}  # the test split is evaluate's
    for path, split, frame in ((splits.train, "train", splits.train_frame), (splits.eval, "eval", splits.eval_frame)):
        with open(path, "rb") as fh:
            assert card.data.splits[split].sha256 == hashlib.sha256(fh.read()).hexdigest()
        assert card.data.splits[split].rows == len(frame)
        assert card.data.splits[split].label_rate == pytest.approx(frame[LABEL].mean())
    assert card.data.source_uri == "synthetic://test"
    params = card.parameters
    for name, value in tools_fast_items(trained_pytorch.params):
        assert params[name] == value, name
    assert params["loss"] == "BCEWithLogitsLoss" and "pos_weight" not in params
    assert params["device"] == "cpu" and params["autocast"] is None
    assert list(card.metrics) == ["eval"]
    eval_metrics = card.metrics["eval"]
    for key in ("pr_auc", "roc_auc", "log_loss", "brier_score", "ece", "f1", "precision", "recall", "best_epoch"):
        assert isinstance(eval_metrics[key], (int, float)), key
    assert eval_metrics["rows_per_second"] > 0
    assert eval_metrics["best_epoch"] == trained_pytorch.result.best_epoch
    assert {"python", "torch", "numpy", "pandas", "sklearn", "kfpkit"} <= set(card.versions)
    assert card.versions["torch"] == torch.__version__
    assert card.pipeline_run == "run-42"
    created = datetime.fromisoformat(card.created_at)
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert len(card.training["history"]) == eval_metrics["epochs_run"]
    # the whole card is plain JSON, and reads back equal
    with open(os.path.join(trained_pytorch.directory, md.MODEL_CARD_FILE), encoding="utf-8") as fh:
        assert md.ModelCard.from_dict(json.load(fh)) == card
    assert sorted(os.listdir(trained_pytorch.directory)) == sorted(
        [
            md.MODEL_CARD_FILE,
            md.TORCHSCRIPT_FILE,
            md.PREPROCESSING_FILE,
            md.CALIBRATION_FILE,
            "monitoring_baseline.json",
        ]
    )


def tools_fast_items(params):
    return [
        ("framework", params.framework),
        ("epochs", params.epochs),
        ("batch_size", params.batch_size),
        ("learning_rate", params.learning_rate),
        ("hidden_units", params.hidden_units),
        ("hidden_layers", params.hidden_layers),
        ("seed", params.seed),
        ("exclude_columns", params.exclude_columns),
    ]


def test_early_stopping_on_pr_auc_stops_after_patience_epochs_without_improvement_and_exports_the_best(
    splits, tmp_path, tools
):
    params = tools.fast_params(epochs=40, patience=1, learning_rate=2e-2, early_stopping_metric="pr_auc")
    result = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), params)
    assert result.epochs_run < 40
    assert result.epochs_run - result.best_epoch == 1
    best = max(result.history, key=lambda h: h["pr_auc"])
    assert best["epoch"] == result.best_epoch
    card = md.read_model_card(result.output_dir)
    assert card.training["stopped_early"] is True
    # the exported weights are the best epoch's: the card's PR-AUC (fp32 on CPU; calibration is monotonic)
    # equals that epoch's
    assert card.metrics["eval"]["pr_auc"] == pytest.approx(best["pr_auc"], abs=1e-9)


def test_existing_output_directory_is_replaced(splits, tmp_path, tools):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    train_model(splits.train, splits.eval, LABEL, str(target), tools.fast_params(epochs=1))
    assert not (target / "stale.txt").exists()
    assert md.load_model(str(target)).framework == "pytorch"
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_exclude_columns_are_not_features_and_absent_names_are_ignored(splits, tmp_path, tools):
    params = tools.fast_params(epochs=1, exclude_columns=["transaction_id", "hour", "no_such_column"])
    result = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "m"), params)
    assert md.read_model_card(result.output_dir).feature_order == [
        "amount",
        "merchant_category",
        "channel",
        "distance_km",
    ]


@pytest.mark.parametrize("kept", [["amount", "hour"], ["merchant_category", "channel"]], ids=["numeric", "categorical"])
def test_trains_and_exports_with_only_numeric_or_only_categorical_features(splits, tmp_path, tools, kept):
    dropped = [c for c in splits.train_frame.columns if c not in (*kept, LABEL)]
    result = train_model(
        splits.train, splits.eval, LABEL, str(tmp_path / "m"), tools.fast_params(epochs=2, exclude_columns=dropped)
    )
    loaded = md.load_model(result.output_dir)
    assert loaded.spec.feature_order == kept
    probabilities = loaded.predict_proba(splits.eval_frame)
    assert probabilities.shape == (len(splits.eval_frame),) and np.isfinite(probabilities).all()
    assert result.metrics["roc_auc"] > 0.6


def test_identifier_column_is_left_out_without_exclude_columns(splits, tmp_path, tools):
    result = train_model(
        splits.train, splits.eval, LABEL, str(tmp_path / "m"), tools.fast_params(epochs=1, exclude_columns=None)
    )
    spec = md.load_model(result.output_dir).spec
    assert "transaction_id" not in spec.feature_order
    assert spec.ignored_columns == ["transaction_id"]
