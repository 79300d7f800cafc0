"""The shared preprocessing spec: fitting, transforming, identifiers, errors, JSON round trip."""

import numpy as np
import pandas as pd
import pytest

from kfpkit.core.preprocessing import UNKNOWN_INDEX, PreprocessingError, PreprocessingSpec


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(n)],
            "amount": rng.gamma(2.0, 30.0, n),
            "channel": rng.choice(["pos", "web", "app"], n, p=[0.6, 0.3, 0.1]),
            "hour": rng.integers(0, 24, n),
            "label": rng.integers(0, 2, n),
        }
    )


def test_fit_standardizes_numerics_and_indexes_categories_from_one(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    numeric, categorical = spec.transform(frame)
    assert spec.numeric_names == ["amount", "hour"] and spec.categorical_names == ["channel"]
    assert numeric.dtype == np.float32 and categorical.dtype == np.int64
    np.testing.assert_allclose(numeric.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(numeric.std(axis=0), 1.0, atol=1e-3)
    assert spec.categorical[0].vocabulary == ["pos", "web", "app"]  # most frequent first
    assert categorical.min() >= 1 and spec.cardinalities == [4]


def test_identifier_columns_are_ignored_not_embedded(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    assert spec.ignored_columns == ["txn_id"]
    assert "txn_id" not in spec.feature_order and "label" not in spec.feature_order


def test_unseen_and_missing_categories_map_to_the_unknown_bucket(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    _, categorical = spec.transform_columns({"amount": [1.0, 2.0], "hour": [3, 4], "channel": ["atm", None]})
    assert categorical[:, 0].tolist() == [UNKNOWN_INDEX, UNKNOWN_INDEX]


def test_missing_numeric_values_are_filled_with_the_training_median(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    numeric, _ = spec.transform_columns({"amount": [None], "hour": [float("nan")], "channel": ["pos"]})
    expected = [(f.fill - f.mean) / f.std for f in spec.numeric]
    np.testing.assert_allclose(numeric[0], expected, rtol=1e-5)


def test_rows_in_declared_order_equal_columns(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    rows = frame[spec.feature_order].head(5).values.tolist()
    by_rows = spec.transform_rows(rows)
    by_frame = spec.transform(frame.head(5))
    np.testing.assert_allclose(by_rows[0], by_frame[0])
    np.testing.assert_array_equal(by_rows[1], by_frame[1])


def test_bad_input_names_the_feature(frame):
    spec = PreprocessingSpec.fit(frame, "label")
    with pytest.raises(PreprocessingError, match="missing feature.*hour"):
        spec.transform_columns({"amount": [1.0], "channel": ["pos"]})
    with pytest.raises(PreprocessingError, match="'amount' is numeric but value #1 is 'lots'"):
        spec.transform_columns({"amount": [1.0, "lots"], "hour": [1, 2], "channel": ["pos", "web"]})
    with pytest.raises(PreprocessingError, match="row 0 has 2 values, expected 3"):
        spec.transform_rows([[1.0, "pos"]])
    with pytest.raises(PreprocessingError, match="not in the data: \\['nope'\\]"):
        PreprocessingSpec.fit(frame, "label", feature_columns=["nope"])


def test_json_round_trip_gives_identical_transforms(frame, tmp_path):
    spec = PreprocessingSpec.fit(frame, "label")
    spec.save(str(tmp_path / "p.json"))
    loaded = PreprocessingSpec.load(str(tmp_path / "p.json"))
    assert loaded.to_dict() == spec.to_dict()
    np.testing.assert_array_equal(loaded.transform(frame)[0], spec.transform(frame)[0])


def test_unknown_format_version_is_refused(frame):
    data = PreprocessingSpec.fit(frame, "label").to_dict()
    data["format_version"] = 99
    with pytest.raises(PreprocessingError, match="format_version 99"):
        PreprocessingSpec.from_dict(data)


def test_a_column_of_strings_and_the_same_values_mixed_with_numbers_and_missing_ones_give_one_vocabulary():
    strings = pd.DataFrame({"code": ["3", "7", "3", "", "7", "3"], "label": [0, 1, 0, 1, 0, 1]})
    mixed = pd.DataFrame({"code": [3, "7", 3.0, None, np.int64(7), float("nan")], "label": [0, 1, 0, 1, 0, 1]})
    mixed.loc[5, "code"] = "3"
    vocabularies = [
        PreprocessingSpec.fit(f, "label", categorical_columns=["code"]).categorical[0].vocabulary
        for f in (strings, mixed)
    ]
    assert vocabularies == [["3", "7"], ["3", "7"]]  # the empty string and None/NaN are missing, not a category
