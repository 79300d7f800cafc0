"""The model directory's calibration: named by the card, stored in calibration.json, applied by LoadedModel."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core.preprocessing import PreprocessingSpec
from tests.common.model_dirs import write_spec_card_and_calibration

LABEL = "y"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=800)
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 800), LABEL: (rng.random(800) < 1 / (1 + np.exp(-2 * x)))})


def _sklearn_dir(directory: str, frame: pd.DataFrame, calibration) -> str:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    os.makedirs(directory)
    spec = PreprocessingSpec.fit(frame, LABEL)
    model = LogisticRegression().fit(md.sklearn_feature_matrix(*spec.transform(frame)), frame[LABEL].astype(int))
    sio.dump(model, os.path.join(directory, md.SKOPS_FILE))
    write_spec_card_and_calibration(directory, spec, "sklearn", LABEL, calibration)
    return directory


def test_predict_proba_arrays_applies_the_platt_calibration_named_by_the_card(tmp_path, frame):
    calibration = md.PlattCalibration(slope=0.5, intercept=-1.0)
    loaded = md.load_model(_sklearn_dir(str(tmp_path / "m"), frame, calibration))
    assert loaded.calibration == calibration
    numeric, categorical = loaded.spec.transform(frame)
    raw = loaded.predict_uncalibrated_arrays(numeric, categorical)
    expected = 1 / (1 + np.exp(-(0.5 * np.log(raw / (1 - raw)) - 1.0)))
    np.testing.assert_allclose(loaded.predict_proba_arrays(numeric, categorical), expected, rtol=1e-12)
    np.testing.assert_allclose(loaded.predict_proba(frame), expected, rtol=1e-12)
    assert not np.allclose(expected, raw)  # the calibration changes the numbers


def test_without_calibration_predict_proba_is_the_models_own_probability(tmp_path, frame):
    loaded = md.load_model(_sklearn_dir(str(tmp_path / "m"), frame, None))
    assert loaded.calibration is None
    numeric, categorical = loaded.spec.transform(frame)
    np.testing.assert_array_equal(
        loaded.predict_proba_arrays(numeric, categorical), loaded.predict_uncalibrated_arrays(numeric, categorical)
    )


def test_platt_calibration_is_finite_at_probabilities_zero_and_one():
    out = md.PlattCalibration(slope=1.3, intercept=0.2).apply(np.array([0.0, 1e-30, 0.5, 1.0]))
    assert np.all(np.isfinite(out)) and np.all((out > 0) & (out < 1)) and np.all(np.diff(out) >= 0)


def test_card_naming_a_calibration_without_the_file_is_refused(tmp_path, frame):
    directory = _sklearn_dir(str(tmp_path / "m"), frame, md.PlattCalibration(1.0, 0.0))
    os.remove(os.path.join(directory, md.CALIBRATION_FILE))
    with pytest.raises(md.ModelDirError, match=r"names calibration 'platt' but there is no calibration\.json"):
        md.load_model(directory)


def test_calibration_file_the_card_does_not_name_is_refused(tmp_path, frame):
    directory = _sklearn_dir(str(tmp_path / "m"), frame, None)
    md.PlattCalibration(1.0, 0.0).save(directory)
    with pytest.raises(md.ModelDirError, match=r"calibration\.json is present but model_card\.json names no"):
        md.load_model(directory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slope": -0.5}, r"slope must be > 0 \(a calibration may not invert the ranking\)"),
        ({"intercept": float("nan")}, "intercept must be a finite number"),
        ({"slope": "1"}, "slope must be a finite number"),
        ({"format": 2}, "format must be 1 and method 'platt'"),
    ],
)
def test_invalid_calibration_file_is_refused_naming_the_field(tmp_path, frame, change, message):
    directory = _sklearn_dir(str(tmp_path / "m"), frame, md.PlattCalibration(1.0, 0.0))
    path = os.path.join(directory, md.CALIBRATION_FILE)
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    document.update(change)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
    with pytest.raises(md.ModelDirError, match=message):
        md.load_model(directory)


def test_card_whose_feature_order_differs_from_the_preprocessing_spec_is_refused(tmp_path, frame):
    directory = _sklearn_dir(str(tmp_path / "m"), frame, None)
    card = md.read_model_card(directory)
    md.write_model_card(directory, dataclasses.replace(card, feature_order=["c", "x"]))
    with pytest.raises(md.ModelDirError, match=r"feature_order \['c', 'x'\] differs from preprocessing\.json's"):
        md.load_model(directory)


def test_invalid_card_makes_load_model_raise_naming_the_field(tmp_path, frame):
    directory = _sklearn_dir(str(tmp_path / "m"), frame, None)
    path = os.path.join(directory, md.MODEL_CARD_FILE)
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    document["decision_threshold"] = float("inf")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
    with pytest.raises(md.ModelCardError, match="decision_threshold must be a finite number in"):
        md.load_model(directory)
