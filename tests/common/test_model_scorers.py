"""LoadedModel's scorers give the probabilities of the library's own scoring path, calibration applied.

The binary LogisticRegression is scored in numpy, other sklearn estimators through ``predict_proba`` and
TorchScript through the module: each is compared here with the library's own answer on tiny real data.
"""

from __future__ import annotations

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
    rng = np.random.default_rng(7)
    n = 600
    x = rng.normal(size=n)
    amount = rng.gamma(2.0, 40.0, n)
    amount[rng.random(n) < 0.05] = np.nan
    channel = rng.choice(["pos", "web", "app"], n, p=[0.5, 0.3, 0.2]).astype(object)
    channel[rng.random(n) < 0.05] = None
    logit = 1.5 * x + 0.01 * np.nan_to_num(amount, nan=80.0) - 1.0 + (channel == "web")
    return pd.DataFrame({"x": x, "amount": amount, "channel": channel, LABEL: rng.random(n) < 1 / (1 + np.exp(-logit))})


def _sklearn_dir(directory: str, frame: pd.DataFrame, estimator, calibration=None):
    import skops.io as sio

    os.makedirs(directory)
    spec = PreprocessingSpec.fit(frame, LABEL)
    estimator.fit(md.sklearn_feature_matrix(*spec.transform(frame)), frame[LABEL].astype(int))
    sio.dump(estimator, os.path.join(directory, md.SKOPS_FILE))
    write_spec_card_and_calibration(directory, spec, "sklearn", LABEL, calibration)
    return md.load_model(directory)


def _reference(loaded: md.LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """sklearn's own predict_proba of the loaded estimator, with sklearn's default validation."""
    return loaded._model.predict_proba(md.sklearn_feature_matrix(*loaded.spec.transform(frame)))[:, 1]


@pytest.mark.parametrize("calibration", [None, md.PlattCalibration(slope=0.7, intercept=-0.3)])
def test_binary_logistic_regression_scores_as_its_predict_proba_with_the_calibration(tmp_path, frame, calibration):
    from sklearn.linear_model import LogisticRegression

    loaded = _sklearn_dir(str(tmp_path / "m"), frame, LogisticRegression(C=0.5), calibration)
    numeric, categorical = loaded.spec.transform(frame)
    reference = _reference(loaded, frame)
    np.testing.assert_allclose(loaded.predict_uncalibrated_arrays(numeric, categorical), reference, rtol=1e-12, atol=0)
    expected = reference if calibration is None else calibration.apply(reference)
    np.testing.assert_allclose(loaded.predict_proba(frame), expected, rtol=1e-12, atol=0)
    one = loaded.predict_proba_arrays(numeric[3:4], categorical[3:4])  # the serving case: one row
    assert one.shape == (1,) and one.dtype == np.float64
    np.testing.assert_allclose(one, expected[3:4], rtol=1e-12, atol=0)


def test_logistic_regression_without_categorical_features_scores_as_its_predict_proba(tmp_path, frame):
    from sklearn.linear_model import LogisticRegression

    numeric_only = frame.drop(columns=["channel"])
    loaded = _sklearn_dir(str(tmp_path / "m"), numeric_only, LogisticRegression(C=0.5))
    numeric, categorical = loaded.spec.transform(numeric_only)
    assert categorical.shape[1] == 0 and numeric.dtype == np.float32  # scored without the float64 copy
    np.testing.assert_array_equal(
        loaded.predict_uncalibrated_arrays(numeric, categorical), _reference(loaded, numeric_only)
    )


def test_logistic_regression_is_scored_in_numpy_not_through_predict_proba(tmp_path, frame):
    from sklearn.linear_model import LogisticRegression

    loaded = _sklearn_dir(str(tmp_path / "m"), frame, LogisticRegression())
    assert "_logistic_scorer" in loaded._scorer.__qualname__


def test_a_matrix_of_the_wrong_width_is_refused_by_the_numpy_scorer(tmp_path, frame):
    from sklearn.linear_model import LogisticRegression

    loaded = _sklearn_dir(str(tmp_path / "m"), frame, LogisticRegression())
    numeric, categorical = loaded.spec.transform(frame.head(2))
    with pytest.raises(ValueError, match="X has 2 features, but LogisticRegression is expecting 3"):
        loaded.predict_uncalibrated_arrays(numeric[:, :1], categorical)


def test_multiclass_logistic_regression_keeps_sklearns_own_scoring(tmp_path, frame):
    from sklearn.linear_model import LogisticRegression

    three = frame.assign(**{LABEL: (frame["x"] > 0).astype(int) + (frame["x"] > 1).astype(int)})
    loaded = _sklearn_dir(str(tmp_path / "m"), three, LogisticRegression())
    assert "_sklearn_scorer" in loaded._scorer.__qualname__
    numeric, categorical = loaded.spec.transform(three)
    np.testing.assert_array_equal(loaded.predict_uncalibrated_arrays(numeric, categorical), _reference(loaded, three))


@pytest.mark.parametrize("categorical_features", [[2], None], ids=["native categories", "all numeric"])
def test_hist_gradient_boosting_scores_as_its_predict_proba_unknown_categories_included(
    tmp_path, frame, categorical_features
):
    from sklearn.ensemble import HistGradientBoostingClassifier

    calibration = md.PlattCalibration(slope=1.2, intercept=0.1)
    estimator = HistGradientBoostingClassifier(categorical_features=categorical_features, max_iter=20, random_state=0)
    loaded = _sklearn_dir(str(tmp_path / "m"), frame, estimator, calibration)
    assert "_hist_gradient_boosting_scorer" in loaded._scorer.__qualname__
    reference = _reference(loaded, frame)
    numeric, categorical = loaded.spec.transform(frame)
    np.testing.assert_array_equal(loaded.predict_uncalibrated_arrays(numeric, categorical), reference)
    for i in range(5):  # one row at a time, as served
        np.testing.assert_array_equal(
            loaded.predict_uncalibrated_arrays(numeric[i : i + 1], categorical[i : i + 1]), reference[i : i + 1]
        )
    np.testing.assert_allclose(loaded.predict_proba(frame), calibration.apply(reference), rtol=1e-12, atol=0)
    unknown = frame.head(3).assign(channel=["never-seen", None, "web"])
    np.testing.assert_allclose(
        loaded.predict_proba(unknown), calibration.apply(_reference(loaded, unknown)), rtol=1e-12, atol=0
    )


def test_torchscript_scores_as_the_scripted_module_with_the_calibration(tmp_path, frame):
    import torch

    from kfpkit.components.train.torch_trainer import TabularNet, export_torchscript

    directory = str(tmp_path / "m")
    os.makedirs(directory)
    spec = PreprocessingSpec.fit(frame, LABEL)
    torch.manual_seed(0)
    net = TabularNet(
        n_numeric=len(spec.numeric),
        cardinalities=spec.cardinalities,
        embedding_dim=3,
        hidden_units=8,
        hidden_layers=2,
        dropout=0.0,
    )
    path = os.path.join(directory, md.TORCHSCRIPT_FILE)
    export_torchscript(net, spec.cardinalities, path)
    calibration = md.PlattCalibration(slope=0.9, intercept=0.2)
    write_spec_card_and_calibration(directory, spec, "pytorch", LABEL, calibration)
    loaded = md.load_model(directory)
    numeric, categorical = spec.transform(frame)
    with torch.no_grad():
        reference = torch.jit.load(path)(torch.from_numpy(numeric), torch.from_numpy(categorical)).double().numpy()
    raw = loaded.predict_uncalibrated_arrays(numeric, categorical)
    assert raw.dtype == np.float64 and raw.shape == (len(frame),)
    np.testing.assert_array_equal(raw, reference)
    np.testing.assert_allclose(loaded.predict_proba(frame), calibration.apply(reference), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(loaded.predict_uncalibrated_arrays(numeric[:1], categorical[:1]), reference[:1])


def test_calibration_keeps_nan_and_clips_exact_zero_and_one():
    calibration = md.PlattCalibration(slope=1.0, intercept=0.0)
    out = calibration.apply(np.array([0.0, 1.0, np.nan, 0.25]))
    np.testing.assert_allclose(out[[0, 1, 3]], [md.CALIBRATION_EPS, 1 - md.CALIBRATION_EPS, 0.25], rtol=1e-9)
    assert np.isnan(out[2])


def test_sklearn_feature_matrix_is_float64_numeric_then_categorical():
    numeric = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32)
    categorical = np.array([[2], [0]], dtype=np.int64)
    matrix = md.sklearn_feature_matrix(numeric, categorical)
    assert matrix.dtype == np.float64 and matrix.flags.c_contiguous
    np.testing.assert_array_equal(matrix, [[1.5, -2.0, 2.0], [0.25, 3.0, 0.0]])


def test_subclasses_of_the_fast_path_estimators_keep_sklearns_own_scoring(frame):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    class Boosting(HistGradientBoostingClassifier):
        pass

    class Logistic(LogisticRegression):
        pass

    spec = PreprocessingSpec.fit(frame, LABEL)
    numeric, categorical = spec.transform(frame)
    matrix = md.sklearn_feature_matrix(numeric, categorical)
    for estimator in (Boosting(max_iter=5), Logistic()):
        estimator.fit(matrix, frame[LABEL].astype(int))
        scorer = md.model_scorer("sklearn", estimator)
        assert "_sklearn_scorer" in scorer.__qualname__
        np.testing.assert_array_equal(scorer(numeric, categorical), estimator.predict_proba(matrix)[:, 1])
