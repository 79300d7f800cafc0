"""transform_columns (numerics as one matrix) equals the per-value definition of the spec, on every input form.

The oracle below applies the spec's documented rules one value at a time: a missing or non-finite number is
the training median, then ``(v - mean) / std`` in float64, stored as float32; a category is its
vocabulary index + 1 under the canonical key (3, 3.0 and "3" agree), else the unknown bucket 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kfpkit.core.preprocessing import (
    CategoricalFeature,
    NumericFeature,
    PreprocessingError,
    PreprocessingSpec,
)

SPEC = PreprocessingSpec(
    label_column="y",
    numeric=[
        NumericFeature("amount", mean=52.25, std=31.5, fill=40.0),
        NumericFeature("hour", mean=11.5, std=6.9, fill=12.0),
    ],
    categorical=[
        CategoricalFeature("channel", vocabulary=["pos", "web", "app"]),
        CategoricalFeature("code", vocabulary=["3", "7", "True"]),
    ],
    feature_order=["amount", "channel", "hour", "code"],
)


def _oracle(spec: PreprocessingSpec, columns):
    n = len(columns[spec.feature_order[0]])
    numeric = np.zeros((n, len(spec.numeric)), dtype=np.float32)
    for j, f in enumerate(spec.numeric):
        for i, raw in enumerate(columns[f.name]):
            v = f.fill if raw is None or not math.isfinite(float(raw)) else float(raw)
            numeric[i, j] = np.float32((v - f.mean) / f.std)
    categorical = np.zeros((n, len(spec.categorical)), dtype=np.int64)
    for j, f in enumerate(spec.categorical):
        for i, v in enumerate(columns[f.name]):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                key = ""
            elif isinstance(v, (float, np.floating)) and float(v).is_integer():
                key = str(int(v))
            elif isinstance(v, np.integer):
                key = str(int(v))
            else:
                key = str(v)
            categorical[i, j] = f.vocabulary.index(key) + 1 if key in f.vocabulary else 0
    return numeric, categorical


CASES = {
    "one row, numpy float64 (the serving decoder's form)": {
        "amount": np.array([12.5]),
        "hour": np.array([3.0]),
        "channel": ["web"],
        "code": ["7"],
    },
    "lists with missing and non-finite numbers, unknown and missing categories": {
        "amount": [1.0, None, float("nan"), float("inf"), -float("inf"), 1e300, 0],
        "hour": [0, 23, 5, None, 7, -1, 12],
        "channel": ["pos", "nope", None, float("nan"), "", "app", "web"],
        "code": [3, 3.0, "3", np.int64(7), np.float64(7.0), True, 3.5],
    },
    "numpy int, object and strided columns": {
        "amount": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])[:, 1],
        "hour": np.array([1, 2, 3], dtype=np.int32),
        "channel": np.array(["app", None, "pos"], dtype=object),
        "code": np.array([7, 3, 9]),
    },
    "no rows": {"amount": [], "hour": np.array([]), "channel": [], "code": []},
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e300 -> float32 inf, as before
@pytest.mark.parametrize("name", list(CASES))
def test_transform_columns_equals_the_per_value_definition(name):
    columns = CASES[name]
    numeric, categorical = SPEC.transform_columns(columns)
    expected_numeric, expected_categorical = _oracle(SPEC, columns)
    assert numeric.dtype == np.float32 and categorical.dtype == np.int64
    assert numeric.flags.c_contiguous and categorical.flags.c_contiguous
    np.testing.assert_array_equal(numeric, expected_numeric)
    np.testing.assert_array_equal(categorical, expected_categorical)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_rows_give_the_same_arrays_as_columns():
    columns = CASES["lists with missing and non-finite numbers, unknown and missing categories"]
    rows = [[columns[f][i] for f in SPEC.feature_order] for i in range(len(columns["amount"]))]
    for got, want in zip(SPEC.transform_rows(rows), SPEC.transform_columns(columns), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), "12", [1.0], {"v": 1}])
def test_a_non_number_in_a_numeric_column_is_refused_naming_feature_and_position(value):
    columns = {"amount": [1.0, value], "hour": [1, 2], "channel": ["pos", "web"], "code": ["3", "7"]}
    with pytest.raises(PreprocessingError, match=r"feature 'amount' is numeric but value #1 is "):
        SPEC.transform_columns(columns)


def test_columns_of_different_lengths_are_refused_naming_the_feature():
    with pytest.raises(PreprocessingError, match=r"feature 'hour' has 2 values, expected 1"):
        SPEC.transform_columns({"amount": [1.0], "hour": [1, 2], "channel": ["pos"], "code": ["3"]})
    with pytest.raises(PreprocessingError, match=r"feature 'code' has 0 values, expected 1"):
        SPEC.transform_columns({"amount": [1.0], "hour": [1], "channel": ["pos"], "code": []})


def test_a_replaced_numeric_list_is_used_by_the_next_transform():
    spec = PreprocessingSpec.from_dict(SPEC.to_dict())
    columns = {"amount": [10.0], "hour": [None], "channel": ["pos"], "code": ["3"]}
    before, _ = spec.transform_columns(columns)
    spec.numeric = [NumericFeature("amount", mean=0.0, std=1.0, fill=0.0), spec.numeric[1]]
    after, _ = spec.transform_columns(columns)
    assert after[0, 0] == 10.0 and before[0, 0] != after[0, 0]
    np.testing.assert_array_equal(after, _oracle(spec, columns)[0])


def test_encode_returns_int64_indices_with_the_unknown_bucket():
    feature = SPEC.categorical[0]
    np.testing.assert_array_equal(feature.encode(["web", "nope", None]), np.array([2, 0, 0], dtype=np.int64))
    assert feature.encode([]).dtype == np.int64 and feature.encode([]).shape == (0,)


NUMERIC_SPEC = PreprocessingSpec(
    label_column="y",
    numeric=[
        NumericFeature("amount", mean=52.25, std=31.5, fill=40.0),
        NumericFeature("hour", mean=11.5, std=6.9, fill=12.0),
        NumericFeature("age", mean=400.0, std=250.0, fill=365.0),
    ],
    categorical=[],
    feature_order=["hour", "amount", "age"],  # not the order of `numeric`
)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_transform_matrix_equals_transform_columns_and_leaves_the_matrix_as_it_was():
    matrix = np.array([[3.0, 12.5, 700.0], [np.nan, np.inf, -np.inf], [23.0, 1e300, 0.0], [-1.0, 0.0, 5.0]])
    before = matrix.copy()
    columns = {f: matrix[:, j] for j, f in enumerate(NUMERIC_SPEC.feature_order)}
    numeric, categorical = NUMERIC_SPEC.transform_matrix(matrix)
    expected_numeric, _ = NUMERIC_SPEC.transform_columns(columns)
    np.testing.assert_array_equal(numeric, expected_numeric)
    np.testing.assert_array_equal(numeric, _oracle(NUMERIC_SPEC, columns)[0])
    assert numeric.dtype == np.float32 and numeric.flags.c_contiguous
    assert categorical.shape == (4, 0) and categorical.dtype == np.int64
    np.testing.assert_array_equal(matrix, before)


def test_transform_matrix_refuses_a_spec_with_categorical_features_and_a_matrix_of_the_wrong_width():
    with pytest.raises(PreprocessingError, match="categorical feature.*channel"):
        SPEC.transform_matrix(np.zeros((1, 4)))
    with pytest.raises(PreprocessingError, match=r"shape \[2, 2\] is not \[n, 3\]"):
        NUMERIC_SPEC.transform_matrix(np.zeros((2, 2)))
