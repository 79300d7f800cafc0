"""Bad input fails with one clear error naming the file, column or parameter, and leaves no output behind."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from kfpkit.components.train.logic import TrainError, TrainParams, train_model

LABEL = "is_fraud"


def _write(tmp_path, name: str, frame: pd.DataFrame) -> str:
    path = str(tmp_path / name)
    frame.to_parquet(path, index=False)
    return path


def _assert_nothing_written(tmp_path, keep=("train.parquet", "eval.parquet")):
    left = sorted(set(os.listdir(tmp_path)) - set(keep))
    assert left == [], f"left behind: {left}"


def test_missing_label_column_fails_naming_the_column_and_file(splits, tmp_path, tools):
    train = _write(tmp_path, "train.parquet", splits.train_frame.drop(columns=[LABEL]))
    with pytest.raises(TrainError, match=r"train data .*train\.parquet: label column 'is_fraud' not found"):
        train_model(train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params())
    _assert_nothing_written(tmp_path)


def test_non_binary_label_fails_listing_the_other_values(splits, tmp_path, tools):
    frame = splits.eval_frame.copy()
    frame.loc[frame.index[:3], LABEL] = 2
    evaluation = _write(tmp_path, "eval.parquet", frame)
    with pytest.raises(
        TrainError, match=r"eval data .*: label column 'is_fraud' is not binary: offending values 2 in 3 row\(s\)"
    ):
        train_model(splits.train, evaluation, LABEL, str(tmp_path / "model"), tools.fast_params())
    _assert_nothing_written(tmp_path)


def test_string_label_other_than_true_false_fails_naming_the_values(splits, tmp_path, tools):
    frame = splits.train_frame.copy()
    frame[LABEL] = frame[LABEL].map({0: "no", 1: "yes"})
    train = _write(tmp_path, "train.parquet", frame)
    with pytest.raises(TrainError, match=r"label column 'is_fraud' is not binary: offending values '\w+', '\w+' in"):
        train_model(train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params())


def test_missing_label_values_fail(splits, tmp_path, tools):
    frame = splits.train_frame.copy()
    frame[LABEL] = frame[LABEL].astype("float64")
    frame.loc[frame.index[5], LABEL] = None
    train = _write(tmp_path, "train.parquet", frame)
    with pytest.raises(TrainError, match=r"label column 'is_fraud' is not binary: offending values 1 missing value"):
        train_model(train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params())


def test_single_class_split_fails(splits, tmp_path, tools):
    frame = splits.train_frame.copy()
    frame[LABEL] = 0
    train = _write(tmp_path, "train.parquet", frame)
    with pytest.raises(TrainError, match=r"train data .*: label column 'is_fraud' holds only negatives \(0\)"):
        train_model(train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params())


def test_unknown_framework_fails_listing_the_choices(splits, tmp_path):
    with pytest.raises(TrainError, match=r"framework must be one of \['pytorch', 'sklearn'\], got 'xgboost'"):
        train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), TrainParams(framework="xgboost"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "case",
    [
        # 0 is "auto" for batch_size and epochs (chosen from the training rows)
        ("batch_size", -1, "batch_size must be an integer >= 1, or 0 for auto, got -1"),
        ("epochs", 2.5, "epochs must be an integer >= 1, or 0 for auto, got 2.5"),
        ("early_stopping_metric", "f1", "early_stopping_metric must be one of"),
        ("dropout", 1.0, r"dropout must be in \[0, 1\), got 1.0"),
        ("learning_rate", 0.0, "learning_rate must be > 0, got 0.0"),
        ("patience", -1, "patience must be an integer >= 0, got -1"),
        ("exclude_columns", "transaction_id", "exclude_columns must be a list of column names"),
    ],
)
def test_invalid_hyperparameter_fails_naming_it(splits, tmp_path, tools, case):
    field, value, message = case
    with pytest.raises(TrainError, match=message):
        train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params(**{field: value}))
    assert os.listdir(tmp_path) == []


def test_missing_file_and_non_parquet_file_fail_naming_the_path(splits, tmp_path, tools):
    with pytest.raises(TrainError, match=r"train data .*nope\.parquet: no such file"):
        train_model(str(tmp_path / "nope.parquet"), splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params())
    (tmp_path / "eval.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrainError, match=r"eval data .*eval\.csv: not a readable Parquet file"):
        train_model(splits.train, str(tmp_path / "eval.csv"), LABEL, str(tmp_path / "model"), tools.fast_params())
    assert sorted(os.listdir(tmp_path)) == ["eval.csv"]


def test_feature_missing_from_eval_fails_naming_it(splits, tmp_path, tools):
    evaluation = _write(tmp_path, "eval.parquet", splits.eval_frame.drop(columns=["channel"]))
    with pytest.raises(TrainError, match=r"eval data .*eval\.parquet: missing feature column\(s\): \['channel'\]"):
        train_model(splits.train, evaluation, LABEL, str(tmp_path / "model"), tools.fast_params())
    _assert_nothing_written(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_requested_without_cuda_fails_and_removes_the_partial_directory(splits, tmp_path, tools):
    with pytest.raises(TrainError, match=r"device 'cuda' requested but CUDA is not available"):
        train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), tools.fast_params(device="cuda"))
    assert os.listdir(tmp_path) == []  # the staging folder beside the output was removed


def test_label_column_in_exclude_columns_fails(splits, tmp_path, tools):
    with pytest.raises(TrainError, match=r"exclude_columns must not name the label column 'is_fraud'"):
        train_model(splits.train, splits.eval, LABEL, str(tmp_path / "m"), tools.fast_params(exclude_columns=[LABEL]))
