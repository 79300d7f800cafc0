"""Reading the Parquet splits that ingest writes (one file per ``Dataset`` artifact)."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Type


def read_split_frame(
    path: str,
    what: str,
    error: Type[Exception] = ValueError,
    required: Sequence[Tuple[str, Optional[str]]] = (),
    allow_empty: bool = True,
) -> Any:
    """Reads one split into a pandas DataFrame, with one clear error for each way it can be unusable.

    Args:
        path: Local path of the Parquet file.
        what: How errors name the data, e.g. ``"eval data"``.
        error: Exception type raised (the caller's own error class).
        required: ``(role, column)`` pairs that must be present, e.g. ``[("label", "is_fraud")]``; a
            ``None`` column is skipped.
        allow_empty: Whether a file without rows is acceptable.

    Raises:
        error: the file is missing or not Parquet, a required column is absent, or it has no rows when
            ``allow_empty`` is false. The message names the file and the column.
    """
    import pandas as pd

    if not os.path.isfile(path):
        raise error(f"{what} {path}: no such file (expected one Parquet file)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise error(f"{what} {path}: not a readable Parquet file ({exc})") from exc
    for role, column in required:
        if column is not None and column not in frame.columns:
            raise error(f"{what} {path}: {role} column {column!r} not found; columns: {list(frame.columns)}")
    if not allow_empty and len(frame) == 0:
        raise error(f"{what} {path}: no rows")
    return frame
