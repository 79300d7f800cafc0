"""The typed, versioned ModelCard: one reader and writer, validation naming the field."""

from __future__ import annotations

import json
import os

import pytest

from kfpkit.core.model_card import (
    CARD_VERSION,
    MODEL_CARD_FILE,
    DataLineage,
    ModelCard,
    ModelCardError,
    SplitLineage,
    read_model_card,
    write_model_card,
)

_INTERVAL = {"point": 0.4, "low": 0.35, "high": 0.45, "level": 0.95, "resamples": 1000.0}


def _card(**overrides) -> ModelCard:
    values = dict(
        framework="sklearn",
        model_file="model.skops",
        label_column="is_fraud",
        feature_order=["amount", "channel"],
        decision_threshold=0.31,
        decision_rule="max F1 on eval",
        calibration="platt",
        data=DataLineage(
            source_uri="synthetic://fraud?rows=100",
            splits={"train": SplitLineage("a" * 64, 70, 0.02), "eval": SplitLineage("b" * 64, 15, 0.0667)},
        ),
        metrics={"eval": {"pr_auc": 0.4, "ece": 0.004}},
        parameters={"seed": 0, "exclude_columns": None},
        training={"device": "cpu"},
        versions={"kfpkit": "0.1.0", "cuda": None},
        pipeline_run="run-1",
        created_at="2026-01-01T00:00:00+00:00",
    )
    values.update(overrides)
    return ModelCard(**values)


def _document(**overrides) -> dict:
    document = _card().to_dict()
    document.update(overrides)
    return document


def test_card_round_trips_through_its_json_file(tmp_path):
    card = _card()
    write_model_card(str(tmp_path), card)
    assert read_model_card(str(tmp_path)) == card
    with open(tmp_path / MODEL_CARD_FILE, encoding="utf-8") as fh:
        document = json.load(fh)
    assert document["card_version"] == CARD_VERSION == 1
    assert document["metrics"] == {"eval": {"pr_auc": 0.4, "ece": 0.004}}
    assert document["data"]["splits"]["train"] == {"sha256": "a" * 64, "rows": 70, "label_rate": 0.02}


def test_optional_fields_have_defaults_and_round_trip(tmp_path):
    card = ModelCard(
        framework="pytorch", model_file="model.pt", label_column="y", feature_order=["x"], decision_threshold=0.5
    )
    write_model_card(str(tmp_path), card)
    loaded = read_model_card(str(tmp_path))
    assert loaded == card and loaded.calibration is None and loaded.data.splits == {} and loaded.metrics == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decision_threshold": 1.5}, r"decision_threshold must be a finite number in \[0, 1\], got 1.5"),
        ({"decision_threshold": float("nan")}, "decision_threshold must be a finite number"),
        ({"decision_threshold": True}, "decision_threshold must be a finite number"),
        ({"framework": "xgboost"}, r"framework must be one of \['pytorch', 'sklearn'\], got 'xgboost'"),
        ({"feature_order": []}, "feature_order must be a non-empty list of column names"),
        ({"feature_order": ["a", ""]}, "feature_order must be a non-empty list"),
        ({"model_file": "../model.pt"}, "model_file must be a file name inside the model directory"),
        ({"label_column": ""}, "label_column must be a non-empty string"),
        ({"calibration": "isotonic"}, r"calibration must be null or one of \['platt'\], got 'isotonic'"),
        ({"metrics": {"pr_auc": 0.4}}, "metrics must map split names to metric objects"),
        ({"card_version": 2}, "card_version must be 1, got 2"),
        ({"card_version": None}, "card_version must be 1, got None"),
        ({"owner": "me"}, r"unknown field\(s\) \['owner'\]"),
        ({"intervals": {"test": [0.1, 0.2]}}, "intervals must map split names to interval objects"),
        ({"intervals": {"test": {"pr_auc": {"low": 0.1}}}}, r"intervals test.pr_auc must have exactly \['high'"),
        (
            {"intervals": {"test": {"pr_auc": dict(_INTERVAL, low=0.5)}}},
            "intervals test.pr_auc: low 0.5 is above high 0.45",
        ),
        ({"intervals": {"test": {"ece": dict(_INTERVAL, level=95)}}}, r"intervals test.ece: level must be in \(0, 1\)"),
        ({"intervals": {"test": {"ece": dict(_INTERVAL, point="x")}}}, "point, low and high must be numbers or null"),
        ({"data": {"splits": {"train": {"sha256": "x"}}}}, "data.splits.train must have sha256, rows and label_rate"),
        (
            {"data": {"splits": {"eval": {"sha256": "x", "rows": -1, "label_rate": 0.1}}}},
            r"data.splits.eval needs a sha256 string, rows >= 0 and a label_rate in \[0, 1\]",
        ),
    ],
)
def test_invalid_card_fails_at_load_naming_the_file_and_field(tmp_path, overrides, message):
    path = tmp_path / MODEL_CARD_FILE
    path.write_text(json.dumps(_document(**overrides)), encoding="utf-8")
    with pytest.raises(ModelCardError, match=message) as caught:
        read_model_card(str(tmp_path))
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize("field", ["framework", "model_file", "label_column", "feature_order", "decision_threshold"])
def test_card_missing_a_required_field_fails_naming_it(tmp_path, field):
    document = _document()
    del document[field]
    (tmp_path / MODEL_CARD_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelCardError, match=rf"missing field\(s\) \['{field}'\]"):
        read_model_card(str(tmp_path))


def test_card_with_test_intervals_round_trips_in_bootstrap_interval_form(tmp_path):
    from kfpkit.core.bootstrap import Interval

    interval = Interval(0.4, 0.35, 0.45, 0.95, 1000).to_dict()
    undefined = Interval(None, None, None, 0.95, 1000).to_dict()
    card = _card(intervals={"test": {"pr_auc": interval, "roc_auc": undefined}})
    write_model_card(str(tmp_path), card)
    loaded = read_model_card(str(tmp_path))
    assert loaded.intervals == {"test": {"pr_auc": interval, "roc_auc": undefined}}


def test_card_written_without_intervals_still_reads_with_none(tmp_path):
    document = _document()
    del document["intervals"]
    (tmp_path / MODEL_CARD_FILE).write_text(json.dumps(document), encoding="utf-8")
    card = read_model_card(str(tmp_path))
    assert card.intervals == {} and card.card_version == 1


def test_card_written_before_the_typed_card_fails_saying_to_retrain(tmp_path):
    legacy = {"framework": "sklearn", "model_file": "model.skops", "label_column": "y", "decision_threshold": 0.4}
    (tmp_path / MODEL_CARD_FILE).write_text(json.dumps(legacy), encoding="utf-8")
    with pytest.raises(ModelCardError, match="card_version must be 1, got None .*re-train the model"):
        read_model_card(str(tmp_path))


def test_missing_or_unreadable_card_file_fails_naming_it(tmp_path):
    with pytest.raises(ModelCardError, match=rf"no {MODEL_CARD_FILE}"):
        read_model_card(str(tmp_path))
    (tmp_path / MODEL_CARD_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelCardError, match="not a readable JSON file"):
        read_model_card(str(tmp_path))
    (tmp_path / MODEL_CARD_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ModelCardError, match="must be a JSON object, got list"):
        read_model_card(str(tmp_path))


def test_an_invalid_card_is_never_written(tmp_path):
    with pytest.raises(ModelCardError, match="decision_threshold"):
        write_model_card(str(tmp_path), _card(decision_threshold=-0.1))
    assert os.listdir(tmp_path) == []
