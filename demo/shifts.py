"""Designed-shift tabular data: the monitor's accuracy suite, ``make bench-drift`` and demos draw from it.

20 columns, deterministic for a seed:

* ``f00``..``f13`` -- floats, each a 2-component mixture: normal for even columns, lognormal for odd ones
  (component parameters fixed per column, independent of the seed);
* ``c10``, ``c20``, ``c35``, ``c50`` -- Zipf-like categoricals (``p_k ~ 1 / (k + 1)^1.1``) with 10/20/35/50 values;
* ``i_poisson`` -- Poisson(5); ``i_uniform`` -- uniform integers 0..999.

:data:`SHIFTS` names each designed shift and the column it changes; :data:`BENCH_SHIFTS` are the five of the
benchmark (mean +0.5 sd, sd x1.5, mixture weight +0.25, a category blend, Poisson 5 -> 6).
"""

from __future__ import annotations

from typing import Dict, Iterable, Tuple

import numpy as np

FLOATS = tuple(f"f{i:02d}" for i in range(14))
CATEGORIES = {"c10": 10, "c20": 20, "c35": 35, "c50": 50}
INTS = ("i_poisson", "i_uniform")
COLUMNS = (*FLOATS, *CATEGORIES, *INTS)
NEW_CATEGORY = "new_value"

# shift name -> (column, what it does)
SHIFTS: Dict[str, Tuple[str, str]] = {
    "mean": ("f00", "mean + 0.5 sd"),
    "variance": ("f01", "sd x 1.5 around the mean"),
    "mixture_weight": ("f02", "weight of the second mixture component + 0.25"),
    "category_frequency": ("c20", "frequencies blended 50/50 with the reversed Zipf order"),
    "integer_rate": ("i_poisson", "Poisson rate 5 -> 6"),
    "new_category": ("c10", f"5% of the rows take the unseen value {NEW_CATEGORY!r}"),
    "missing_rate": ("f03", "10% of the values missing"),
}
BENCH_SHIFTS = ("mean", "variance", "mixture_weight", "category_frequency", "integer_rate")


def _float_params(index: int) -> Tuple[float, float, float, float, float]:
    """``(weight of component 2, mean1, sd1, mean2, sd2)`` of float column ``index``."""
    rng = np.random.default_rng(1000 + index)
    weight = float(rng.uniform(0.25, 0.45))
    if index % 2 == 0:
        return weight, float(rng.uniform(-2, 2)), float(rng.uniform(0.5, 1.5)), float(rng.uniform(3, 6)), 1.0
    return weight, float(rng.uniform(0, 1)), float(rng.uniform(0.3, 0.6)), float(rng.uniform(1.5, 2.5)), 0.4


def _zipf(values: int) -> np.ndarray:
    p = 1.0 / np.arange(1, values + 1) ** 1.1
    return p / p.sum()


def category_values(column: str) -> list:
    """The values of categorical ``column`` (``<column>_v00``, ...), most frequent first in unshifted data."""
    return [f"{column}_v{k:02d}" for k in range(CATEGORIES[column])]


def generate(rows: int, seed: int, shifts: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """``{column: numpy array}`` of ``rows`` rows; categoricals are object arrays of strings (``None`` missing).

    Raises:
        ValueError: an unknown shift name.
    """
    shifts = set(shifts)
    unknown = shifts - set(SHIFTS)
    if unknown:
        raise ValueError(f"unknown shift(s) {sorted(unknown)}; expected some of {sorted(SHIFTS)}")
    rng = np.random.default_rng(seed)
    out: Dict[str, np.ndarray] = {}
    for i, name in enumerate(FLOATS):
        weight, m1, s1, m2, s2 = _float_params(i)
        if "mixture_weight" in shifts and name == SHIFTS["mixture_weight"][0]:
            weight += 0.25
        second = rng.random(rows) < weight
        values = np.where(second, rng.normal(m2, s2, rows), rng.normal(m1, s1, rows))
        if i % 2 == 1:
            values = np.exp(values)
        mean = (1 - weight) * m1 + weight * m2 if i % 2 == 0 else float(values.mean())
        if "mean" in shifts and name == SHIFTS["mean"][0]:
            values = values + 0.5 * _mixture_sd(weight, m1, s1, m2, s2)
        if "variance" in shifts and name == SHIFTS["variance"][0]:
            values = mean + 1.5 * (values - mean)
        if "missing_rate" in shifts and name == SHIFTS["missing_rate"][0]:
            values = values.copy()
            values[rng.random(rows) < 0.10] = np.nan
        out[name] = values
    for name, size in CATEGORIES.items():
        p = _zipf(size)
        if "category_frequency" in shifts and name == SHIFTS["category_frequency"][0]:
            p = 0.5 * p + 0.5 * p[::-1]
        labels = np.asarray(category_values(name), dtype=object)
        column = labels[rng.choice(size, size=rows, p=p)]
        if "new_category" in shifts and name == SHIFTS["new_category"][0]:
            column = column.copy()
            column[rng.random(rows) < 0.05] = NEW_CATEGORY
        out[name] = column
    rate = 6.0 if "integer_rate" in shifts else 5.0
    out["i_poisson"] = rng.poisson(rate, rows).astype(np.int64)
    out["i_uniform"] = rng.integers(0, 1000, rows).astype(np.int64)
    return out


def _mixture_sd(weight: float, m1: float, s1: float, m2: float, s2: float) -> float:
    mean = (1 - weight) * m1 + weight * m2
    second = (1 - weight) * (s1**2 + m1**2) + weight * (s2**2 + m2**2)
    return float(np.sqrt(second - mean**2))


def to_arrow(columns: Dict[str, np.ndarray]):
    """A ``pyarrow.Table`` of generated columns (floats float64, categoricals string, ints int64)."""
    import pyarrow as pa

    return pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})


def expected_drifted(shifts: Iterable[str]) -> set:
    """The columns the given shifts change."""
    return {SHIFTS[s][0] for s in shifts}
