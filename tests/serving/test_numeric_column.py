"""numeric_column reads long JSON columns fast and still refuses every boolean in them."""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit.serving.protocol import BadRequest, numeric_column


def _column(n: int, seed: int = 0) -> list:
    values = np.random.default_rng(seed).normal(50.0, 20.0, n).tolist()
    values[::7] = [0.0] * len(values[::7])  # zeros and ones are where booleans could hide
    values[3::11] = [1] * len(values[3::11])
    return values


@pytest.mark.parametrize("n", [5, 64, 65, 1000, 5000])
def test_a_long_numeric_column_is_read_as_float64_values_in_order(n):
    values = _column(n)

    got = numeric_column(values, "amount")

    assert got.dtype == np.float64 and got.tolist() == [float(v) for v in values]


@pytest.mark.parametrize("n", [5, 64, 65, 1000, 5000])
@pytest.mark.parametrize("boolean", [True, False])
def test_one_boolean_anywhere_in_a_long_column_is_refused_with_its_position(n, boolean):
    values = _column(n)
    position = n - 2
    values[position] = boolean

    with pytest.raises(BadRequest, match=rf"feature 'amount' is numeric but value #{position} is {boolean}"):
        numeric_column(values, "amount")


def test_a_column_mostly_of_zeros_and_ones_with_a_boolean_is_refused():
    values = [0, 1] * 500
    values[777] = True

    with pytest.raises(BadRequest, match="value #777 is True"):
        numeric_column(values, "transactions_last_24h")
    assert numeric_column([0, 1] * 500, "transactions_last_24h").sum() == 500.0
