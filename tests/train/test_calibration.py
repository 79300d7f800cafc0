"""Calibration: Platt scaling fitted on eval, stored in the model directory, applied by LoadedModel.

Models are trained here on fresh tiny data and judged on a held-out test split that train never sees.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os

import numpy as np
import pytest

from kfpkit.components.train.logic import train_model
from kfpkit.core import classification_metrics as m
from kfpkit.core import model_dir as md

LABEL = "is_fraud"


@pytest.fixture(scope="module")
def three_splits(tmp_path_factory, tools):
    """train / eval / test as ingest writes them (one folder), the test rows drawn independently."""
    folder = tmp_path_factory.mktemp("three-splits")
    frames = {"train": tools.make_frame(6000, seed=11), "eval": tools.make_frame(3000, seed=12)}
    frames["test"] = tools.make_frame(4000, seed=13)
    paths = {}
    for split, frame in frames.items():
        paths[split] = str(folder / f"{split}.parquet")
        frame.to_parquet(paths[split], index=False)
    return paths, frames


@pytest.fixture(scope="module")
def trained(three_splits, tmp_path_factory, tools):
    """Both frameworks trained once on the train split, calibrated on eval: framework -> (result, loaded)."""
    paths, _frames = three_splits
    out = {}
    for framework in ("pytorch", "sklearn"):
        directory = str(tmp_path_factory.mktemp(framework) / "model")
        params = tools.fast_params(framework=framework)
        out[framework] = train_model(paths["train"], paths["eval"], LABEL, directory, params), md.load_model(directory)
    return out


@pytest.fixture(params=["pytorch", "sklearn"])
def calibrated(request, trained, three_splits):
    result, loaded = trained[request.param]
    return result, loaded, three_splits[1]["test"]


def test_calibrated_probabilities_on_the_test_split_beat_the_constant_and_have_a_small_ece(calibrated):
    result, loaded, test = calibrated
    labels = test[LABEL].to_numpy()
    probabilities = loaded.predict_proba(test)
    rate = labels.mean()
    constant_brier = m.brier_score(labels, np.full(len(labels), rate))
    assert constant_brier == pytest.approx(rate * (1 - rate))
    brier = m.brier_score(labels, probabilities)
    assert brier < 0.85 * constant_brier, (brier, constant_brier)
    assert m.expected_calibration_error(labels, probabilities) < 0.03
    # the mean calibrated probability is the observed rate, within sampling noise of 4000 rows
    assert abs(probabilities.mean() - rate) < 0.015
    assert result.calibration.fitted_on == "eval" and result.calibration.slope > 0


def test_calibration_lowers_ece_against_the_raw_model_and_keeps_the_ranking(calibrated):
    _result, loaded, test = calibrated
    labels = test[LABEL].to_numpy()
    raw = loaded.predict_uncalibrated_arrays(*loaded.spec.transform(test))
    probabilities = loaded.predict_proba(test)
    assert m.expected_calibration_error(labels, probabilities) < m.expected_calibration_error(labels, raw) + 0.005
    assert m.pr_auc(labels, probabilities) == pytest.approx(m.pr_auc(labels, raw), abs=1e-6)
    assert m.roc_auc(labels, probabilities) == pytest.approx(m.roc_auc(labels, raw), abs=1e-9)


def test_sklearn_balanced_class_weights_are_miscalibrated_until_platt_scaling(trained, three_splits):
    _paths, frames = three_splits
    _result, loaded = trained["sklearn"]
    labels = frames["test"][LABEL].to_numpy()
    raw = loaded.predict_uncalibrated_arrays(*loaded.spec.transform(frames["test"]))
    calibrated = loaded.predict_proba(frames["test"])
    assert m.expected_calibration_error(labels, raw) > 0.1  # class_weight="balanced" inflates the probabilities
    assert m.expected_calibration_error(labels, calibrated) < m.expected_calibration_error(labels, raw) / 3


def test_calibration_json_is_what_predict_proba_applies_and_the_card_names_it(calibrated):
    result, loaded, test = calibrated
    with open(os.path.join(loaded.directory, md.CALIBRATION_FILE), encoding="utf-8") as fh:
        stored = json.load(fh)
    assert stored == {
        "format": 1,
        "method": "platt",
        "slope": result.calibration.slope,
        "intercept": result.calibration.intercept,
        "fitted_on": "eval",
    }
    assert loaded.card.calibration == "platt"
    raw = loaded.predict_uncalibrated_arrays(*loaded.spec.transform(test))
    logit = np.log(raw) - np.log1p(-raw)
    by_hand = 1 / (1 + np.exp(-(stored["slope"] * logit + stored["intercept"])))
    np.testing.assert_allclose(loaded.predict_proba(test), by_hand, rtol=1e-9, atol=1e-12)
    # the serving path (columns, as the predictor decodes requests) gives the same calibrated values
    columns = {name: test[name].tolist() for name in loaded.spec.feature_order}
    np.testing.assert_allclose(loaded.predict_proba_columns(columns), loaded.predict_proba(test), atol=1e-12)


def test_card_eval_metrics_and_threshold_are_those_of_the_calibrated_probabilities(calibrated, three_splits):
    result, loaded, _test = calibrated
    _paths, frames = three_splits
    labels = frames["eval"][LABEL].to_numpy()
    probabilities = loaded.predict_proba(frames["eval"])
    assert loaded.decision_threshold == pytest.approx(m.max_f1_threshold(labels, probabilities), abs=1e-9)
    card = loaded.card.metrics["eval"]
    assert card["brier_score"] == pytest.approx(m.brier_score(labels, probabilities), abs=1e-9)
    assert card["ece"] == pytest.approx(m.expected_calibration_error(labels, probabilities), abs=1e-9)
    assert result.metrics == card


def test_a_model_ranking_eval_worse_than_chance_keeps_slope_one_and_matches_the_rate(caplog):
    from kfpkit.components.train.calibration import fit_platt

    rng = np.random.default_rng(5)
    labels = (rng.random(4000) < 0.05).astype(np.int64)
    inverted = np.clip(0.6 - 0.3 * labels + 0.05 * rng.random(4000), 0, 1)  # positives score lower
    with caplog.at_level("WARNING", logger="kfpkit.train"):
        calibration = fit_platt(labels, inverted)
    assert calibration.slope == 1.0 and "fitting the intercept only" in caplog.text
    calibrated = calibration.apply(inverted)
    assert calibrated.mean() == pytest.approx(labels.mean(), abs=1e-9)
    assert np.all(np.diff(calibrated[np.argsort(inverted)]) >= 0)  # the ranking is kept


def test_platt_fit_recovers_a_known_miscalibration():
    from kfpkit.components.train.calibration import fit_platt

    rng = np.random.default_rng(6)
    true_logit = rng.normal(-3.0, 1.5, 50_000)
    labels = (rng.random(true_logit.shape[0]) < 1 / (1 + np.exp(-true_logit))).astype(np.int64)
    reported = 1 / (1 + np.exp(-(2.0 * true_logit + 3.0)))  # overconfident and shifted
    calibration = fit_platt(labels, reported)
    assert calibration.slope == pytest.approx(0.5, abs=0.03)
    assert calibration.intercept == pytest.approx(-1.5, abs=0.15)


# ----------------------------------------------------------------------------------------- the test split
def test_train_never_reads_the_test_split(three_splits, tmp_path, tools):
    """train_model takes no test input; with an unreadable test file beside its splits (as ingest lays them
    out) it trains, and the card's lineage and metrics name train and eval only."""
    from kfpkit.components.train.component import train

    paths, _frames = three_splits
    folder = tmp_path / "ingest-output"
    folder.mkdir()
    for split in ("train", "eval"):
        (folder / f"{split}.parquet").write_bytes(open(paths[split], "rb").read())
    (folder / "test.parquet").write_bytes(b"not parquet: reading this file would fail")
    parameters = inspect.signature(train_model).parameters
    assert [p for p in parameters if p.endswith("_path")] == ["train_path", "eval_path"]
    assert not any("test" in name for name in inspect.signature(train.python_func).parameters)

    params = tools.fast_params(framework="sklearn")
    train_path, eval_path = str(folder / "train.parquet"), str(folder / "eval.parquet")
    result = train_model(train_path, eval_path, LABEL, str(tmp_path / "m"), params)
    card = md.read_model_card(result.output_dir)
    assert set(card.data.splits) == {"train", "eval"} and list(card.metrics) == ["eval"]
    for split in ("train", "eval"):
        with open(folder / f"{split}.parquet", "rb") as fh:
            assert card.data.splits[split].sha256 == hashlib.sha256(fh.read()).hexdigest()
    assert "test" not in json.dumps(card.to_dict()["data"])
