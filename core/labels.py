"""The one binary-label check of kfpkit: what a 0/1 label column may hold, and the error when it does not.

Accepted values: 0/1 integers or integral floats, bools, and the strings ``"0"``/``"1"``/``"true"``/``"false"``
(any case, surrounding spaces ignored). Missing values are refused. Every caller passes its own exception type
and a ``where`` prefix (the file or URI), so that the message names the data, the column and the offending
values.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type

import numpy as np

MAX_SHOWN_VALUES = 5
TRUE_STRINGS = frozenset({"1", "true"})
FALSE_STRINGS = frozenset({"0", "false"})
ACCEPTED = "labels must be 0/1, true/false, or the strings '0'/'1'/'true'/'false'"


def binary_labels(values: Any, column: str, where: str, error: Type[Exception] = ValueError) -> np.ndarray:
    """Returns a label column as int64 0/1.

    Args:
        values: A pandas Series, a numpy array or a sequence.
        column: The label column's name (for the message).
        where: What holds the column, e.g. ``"eval data /tmp/eval.parquet"`` (for the message).
        error: Exception type raised.

    Raises:
        error: a missing value or any value outside the accepted ones; the message names ``where``, the
            column, up to five offending values and the number of bad rows.
    """
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
        return series.to_numpy(dtype=bool).astype(np.int64)
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        ints = series.to_numpy(dtype=np.int64)
        if not ((ints != 0) & (ints != 1)).any():
            return ints
    missing = series.isna().to_numpy()
    present = series[~missing]
    mapping: Dict[Any, int] = {}
    offending: List[Any] = []
    for value in pd.unique(present):
        mapped = label_value(value)
        if mapped is None:
            offending.append(value)
        else:
            mapping[value] = mapped
    if offending or missing.any():
        bad_rows = int(missing.sum()) + (int(present.isin(offending).sum()) if offending else 0)
        shown = [repr(v.item() if isinstance(v, np.generic) else v) for v in offending[:MAX_SHOWN_VALUES]]
        if len(offending) > MAX_SHOWN_VALUES:
            shown.append(f"... ({len(offending)} distinct)")
        if missing.any():
            shown.append(f"{int(missing.sum())} missing value(s)")
        raise error(
            f"{where}: label column {column!r} is not binary: offending values {', '.join(shown)} in "
            f"{bad_rows} row(s); {ACCEPTED}"
        )
    return present.map(mapping).to_numpy(dtype=np.int64)


def label_value(value: Any) -> Optional[int]:
    """0 or 1 for an accepted label value, ``None`` for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value) if value in (0, 1) else None
    if isinstance(value, (float, np.floating)):
        return int(value) if value in (0.0, 1.0) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_STRINGS:
            return 1
        if text in FALSE_STRINGS:
            return 0
    return None


def require_both_classes(labels: np.ndarray, column: str, where: str, error: Type[Exception] = ValueError) -> None:
    """Raises ``error`` unless ``labels`` (0/1) hold at least one row of each class.

    ROC-AUC, PR-AUC, the decision threshold and calibration are undefined on a single class.
    """
    positives = int(np.sum(labels))
    if positives == 0 or positives == len(labels):
        only = "positives (1)" if positives else "negatives (0)"
        raise error(
            f"{where}: label column {column!r} holds only {only} in {len(labels)} row(s); "
            "ROC-AUC, PR-AUC, the threshold and the calibration need both classes"
        )
