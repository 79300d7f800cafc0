"""framework="sklearn": the HistGradientBoosting baseline, saved with skops, loaded by model_dir.load_model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import skops
import skops.io as sio
from sklearn.metrics import average_precision_score

from kfpkit.components.train.logic import train_model
from kfpkit.core import model_dir as md
from kfpkit.core import monitoring_baseline as mb

LABEL = "is_fraud"


def test_sklearn_baseline_trains_and_loads_via_load_model(trained_sklearn, splits):
    directory = trained_sklearn.directory
    assert sorted(os.listdir(directory)) == sorted(
        [md.MODEL_CARD_FILE, md.SKOPS_FILE, md.PREPROCESSING_FILE, md.CALIBRATION_FILE, mb.BASELINE_FILE]
    )
    loaded = md.load_model(directory)
    assert loaded.framework == "sklearn"
    probabilities = loaded.predict_proba(splits.eval_frame)
    # the monitoring baseline: this model's files, and the served (calibrated) eval score distribution
    baseline = mb.read_baseline(directory)
    mb.check_matches_model_dir(baseline, directory)
    assert baseline.score.counts == mb.bin_counts(probabilities, np.asarray(baseline.score.edges)).tolist()
    labels = splits.eval_frame[LABEL].to_numpy()
    eval_metrics = loaded.card.metrics["eval"]
    assert average_precision_score(labels, probabilities) == pytest.approx(eval_metrics["pr_auc"], abs=1e-6)
    assert eval_metrics["pr_auc"] > 3 * labels.mean()
    assert 0 < loaded.decision_threshold < 1


def test_skops_file_holds_only_sklearn_numpy_and_the_partial_around_check_array(trained_sklearn):
    untrusted = sio.get_untrusted_types(file=os.path.join(trained_sklearn.directory, md.SKOPS_FILE))
    # HistGradientBoosting's categorical preprocessor wraps sklearn's check_array in functools.partial
    assert all(t.startswith(("sklearn.", "numpy.")) or t == "functools.partial" for t in untrusted), untrusted


def test_sklearn_uses_native_categorical_splits_and_balanced_classes(trained_sklearn):
    card = md.read_model_card(trained_sklearn.directory)
    params = card.parameters
    assert params["estimator"] == "HistGradientBoostingClassifier"
    assert params["estimator_params"]["class_weight"] == "balanced"
    assert params["estimator_params"]["early_stopping"] is True
    assert params["estimator_params"]["random_state"] == 0
    # numerics first (amount, hour, distance_km), then merchant_category and channel at positions 3 and 4
    assert params["estimator_params"]["categorical_features"] == [3, 4]
    assert params["native_categorical"] == ["merchant_category", "channel"]
    assert card.versions["skops"] == skops.__version__ and "torch" not in card.versions
    assert card.metrics["eval"]["best_epoch"] == card.metrics["eval"]["epochs_run"] >= 1


def test_sklearn_unknown_categories_score_without_error(trained_sklearn, splits):
    loaded = md.load_model(trained_sklearn.directory)
    frame = splits.eval_frame.head(20).copy()
    frame["merchant_category"] = "never-seen"
    frame["channel"] = None
    probabilities = loaded.predict_proba(frame)
    assert np.isfinite(probabilities).all()


def test_categorical_beyond_255_values_is_kept_as_ordinal_codes(tmp_path, tools):
    train = tools.make_frame(2000, seed=3)
    evaluation = tools.make_frame(800, seed=4)
    train["store"] = [f"s{i % 400}" for i in range(len(train))]
    evaluation["store"] = [f"s{i % 500}" for i in range(len(evaluation))]
    train.to_parquet(tmp_path / "train.parquet")
    evaluation.to_parquet(tmp_path / "eval.parquet")
    params = tools.fast_params(framework="sklearn")
    train_model(str(tmp_path / "train.parquet"), str(tmp_path / "eval.parquet"), LABEL, str(tmp_path / "m"), params)
    card = md.read_model_card(str(tmp_path / "m"))
    assert card.parameters["ordinal_categorical"] == ["store"]
    assert "store" not in card.parameters["native_categorical"]
    assert md.load_model(str(tmp_path / "m")).predict_proba(evaluation).shape == (800,)
