"""The one binary-label check (core/labels.py) that train and evaluate use."""

import numpy as np
import pandas as pd
import pytest

from kfpkit.core.labels import binary_labels, require_both_classes


class MyError(ValueError):
    pass


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([True, False]), [1, 0]),
        (pd.Series([1, 0, 1]), [1, 0, 1]),
        (pd.Series([1.0, 0.0]), [1, 0]),
        (pd.Series(["1", " TRUE ", "false", "0"]), [1, 1, 0, 0]),
        (np.array([0, 1], dtype=np.uint8), [0, 1]),
    ],
)
def test_accepted_label_values_become_int64_zero_one(values, expected):
    labels = binary_labels(values, "is_fraud", "train data t.parquet")
    assert labels.dtype == np.int64 and labels.tolist() == expected


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        (pd.Series([0, 1, 2, 3, 2]), "offending values 2, 3 in 3 row(s)"),
        (pd.Series([0.0, 1.0, float("nan")]), "offending values 1 missing value(s) in 1 row(s)"),
        (pd.Series(["no", "yes", "1"]), "offending values 'no', 'yes' in 2 row(s)"),
        (pd.Series([0.5, 1.0]), "offending values 0.5 in 1 row(s)"),
    ],
)
def test_other_values_raise_the_callers_error_naming_data_column_and_values(values, shown):
    with pytest.raises(MyError) as caught:
        binary_labels(values, "is_fraud", "eval data /d/eval.parquet", error=MyError)
    message = str(caught.value)
    assert message.startswith("eval data /d/eval.parquet: label column 'is_fraud' is not binary: ")
    assert shown in message


@pytest.mark.parametrize(("value", "only"), [(0, "negatives (0)"), (1, "positives (1)")])
def test_a_single_class_fails_saying_both_classes_are_needed(value, only):
    with pytest.raises(MyError) as caught:
        require_both_classes(np.full(5, value), "y", "test data x", error=MyError)
    assert str(caught.value).startswith(f"test data x: label column 'y' holds only {only} in 5 row(s)")
    require_both_classes(np.array([0, 1]), "y", "test data x", error=MyError)
